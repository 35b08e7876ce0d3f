// SkillRunner: registry, credential resolution, pooled execution, audit.
#include <algorithm>
#include <array>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>
#include <typeinfo>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "credentials/errors.h"
#include "credentials/skills.h"
#include "credentials/vault.h"
#include "crypto/primitives.h"
#include "db/connection.h"
#include "db/connection_pool.h"
#include "skills/skill.h"
#include "vault/vault_impl.h"

namespace credentials {
namespace internal {
namespace {

constexpr std::size_t kMaxDbConfigSize = 64 * 1024;

std::string hex_sha256(std::string_view text) { return hex_encode(sha256(as_bytes(text))); }

// The class name of a library error, for audit events.
std::string error_kind(const std::exception& e) {
  if (dynamic_cast<const UnauthorizedError*>(&e)) return "UnauthorizedError";
  if (dynamic_cast<const CredentialNotFoundError*>(&e)) return "CredentialNotFoundError";
  if (dynamic_cast<const DecryptionFailedError*>(&e)) return "DecryptionFailedError";
  if (dynamic_cast<const MasterKeyRotatedError*>(&e)) return "MasterKeyRotatedError";
  if (dynamic_cast<const InvalidArgumentError*>(&e)) return "InvalidArgumentError";
  if (dynamic_cast<const DatabaseError*>(&e)) return "DatabaseError";
  if (dynamic_cast<const SkillError*>(&e)) return "SkillError";
  if (dynamic_cast<const Error*>(&e)) return "Error";
  return "InternalError";
}

std::string outcome_of(const std::exception& e) {
  if (dynamic_cast<const UnauthorizedError*>(&e)) return "denied";
  if (dynamic_cast<const CredentialNotFoundError*>(&e)) return "not_found";
  return "error";
}

// True when `path` is `base` or below it (both canonical).
bool is_within(const std::filesystem::path& path, const std::filesystem::path& base) {
  auto p = path.begin();
  for (auto b = base.begin(); b != base.end(); ++b, ++p) {
    if (p == path.end() || *p != *b) return false;
  }
  return true;
}

// The credential and overrides a db_config.json names.
struct DbConfig {
  std::string credential_ref;
  ConnectionOverrides overrides;
};

DbConfig read_db_config(const Skill& skill) {
  const std::filesystem::path& skill_md = skill.info.file;
  const std::string& relative = skill.db_config_file;
  std::error_code ec;
  const std::filesystem::path folder = std::filesystem::canonical(skill_md.parent_path(), ec);
  if (ec) throw SkillError(fmt::format("skill '{}': its folder cannot be read", skill.info.name));
  // canonical() follows every symlink, so a link inside the folder that
  // points elsewhere is caught here too.
  const std::filesystem::path file = std::filesystem::canonical(folder / relative, ec);
  if (ec) {
    throw SkillError(fmt::format("skill '{}': db_config_file '{}' does not exist in {}",
                                 skill.info.name, relative, folder.string()));
  }
  if (!is_within(file, folder) || file == folder) {
    throw SkillError(
        fmt::format("skill '{}': db_config_file '{}' resolves outside the skill's folder; refused",
                    skill.info.name, relative));
  }
  if (!std::filesystem::is_regular_file(file, ec)) {
    throw SkillError(fmt::format("skill '{}': db_config_file '{}' is not a regular file",
                                 skill.info.name, relative));
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  if (!in || text.size() > kMaxDbConfigSize) {
    throw SkillError(
        fmt::format("skill '{}': db_config_file '{}' cannot be read (or is over 64 KiB)",
                    skill.info.name, relative));
  }
  const auto where = [&] { return fmt::format("skill '{}': {}", skill.info.name, file.string()); };
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw SkillError(fmt::format("{}: not valid JSON (at byte {})", where(), e.byte));
  } catch (const nlohmann::json::exception&) {
    throw SkillError(fmt::format("{}: not valid JSON (a number is out of range)", where()));
  }
  if (!json.is_object()) throw SkillError(fmt::format("{}: must be a JSON object", where()));
  for (const char* secret : {"password", "url", "connection_string", "database_url"}) {
    if (json.contains(secret)) {
      throw SkillError(fmt::format(
          "{}: holds '{}': secrets belong in the vault; name a credential with credential_ref",
          where(), secret));
    }
  }
  DbConfig config;
  const auto ref = json.find("credential_ref");
  if (ref == json.end() || !ref->is_string() || ref->get<std::string>().empty()) {
    throw SkillError(fmt::format("{}: needs \"credential_ref\": \"<credential name>\"", where()));
  }
  config.credential_ref = ref->get<std::string>();
  for (const char* key : {"host", "database"}) {
    if (const auto it = json.find(key); it != json.end()) {
      if (!it->is_string())
        throw SkillError(fmt::format("{}: \"{}\" must be a string", where(), key));
      (std::string_view(key) == "host" ? config.overrides.host : config.overrides.database) =
          it->get<std::string>();
    }
  }
  if (const auto it = json.find("port"); it != json.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() <= 0 ||
        it->get<std::int64_t>() > 65535) {
      throw SkillError(fmt::format("{}: \"port\" must be an integer from 1 to 65535", where()));
    }
    config.overrides.port = it->get<int>();
  }
  return config;
}

std::string fingerprint(const ConnectionOverrides& o) {
  return fmt::format("{}\x1f{}\x1f{}", o.host.value_or("\x1e"), o.port.value_or(0),
                     o.database.value_or("\x1e"));
}

}  // namespace

class SkillRunnerImpl {
 public:
  SkillRunnerImpl(Vault& vault, SkillRunnerOptions options)
      : vault_(vault), options_(std::move(options)), pool_(options_.max_idle_per_credential) {}

  void load() {
    std::error_code ec;
    const auto& dir = options_.skills_dir;
    if (!std::filesystem::is_directory(dir, ec)) {
      throw SkillError(
          fmt::format("the skills directory '{}' does not exist or is not a "
                      "directory (set CREDENTIAL_SKILLS_DIR or --skills-dir)",
                      dir.string()));
    }
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const auto skill_md = entry.path() / "skill.md";
      if (entry.is_directory() && std::filesystem::exists(skill_md)) files.push_back(skill_md);
    }
    if (ec) throw SkillError(fmt::format("the skills directory '{}' cannot be read", dir.string()));
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      SkillProblem problem;
      std::optional<Skill> skill = parse_skill(file, problem);
      if (skill) {
        const std::string name = skill->info.name;
        if (const auto it = skills_.find(name); it != skills_.end()) {
          problem = SkillProblem{file, skill->name_line,
                                 fmt::format("name: '{}' is already the name of {}", name,
                                             it->second.info.file.string())};
        } else {
          skill->query_sha256 = hex_sha256(skill->query);
          skills_.emplace(name, std::move(*skill));
          continue;
        }
      }
      problems_.push_back(problem);
      // A malformed skill may have no readable name: remember it by folder.
      broken_.emplace(file.parent_path().filename().string(), problems_.size() - 1);
    }
  }

  nlohmann::json execute(std::string_view skill_name, const nlohmann::json& inputs,
                         const UserContext& user) {
    AuditRecord event;
    event.action = "skill";
    event.skill = std::string(skill_name);
    try {
      nlohmann::json result = run(skill_name, inputs, user, event);
      event.outcome = "ok";
      try {
        vault_.impl().record_event(user, event);
      } catch (const std::exception& e) {
        // Fail closed: no result without its audit event.
        throw DatabaseError(fmt::format(
            "skill '{}' ran, but its audit event could not be written, so its result is "
            "withheld: {}",
            skill_name, e.what()));
      }
      return result;
    } catch (const std::exception& e) {
      if (event.outcome != "ok") {
        event.outcome = outcome_of(e);
        event.error_kind = error_kind(e);
        try {
          vault_.impl().record_event(user, event);
        } catch (const std::exception&) {
          // The caller gets the original error; the audit layer reports its own.
        }
      }
      throw;
    }
  }

  std::vector<SkillInfo> skills() const {
    std::vector<SkillInfo> out;
    for (const auto& [name, skill] : skills_) out.push_back(skill.info);
    return out;
  }

  const std::vector<SkillProblem>& problems() const { return problems_; }

 private:
  const Skill& find(std::string_view name) const {
    if (const auto it = skills_.find(std::string(name)); it != skills_.end()) return it->second;
    if (const auto it = broken_.find(std::string(name)); it != broken_.end()) {
      throw SkillError(
          fmt::format("skill '{}' is malformed: {}", name, problems_[it->second].to_string()));
    }
    throw SkillError(fmt::format("no skill named '{}' in {}", name, options_.skills_dir.string()));
  }

  nlohmann::json run(std::string_view skill_name, const nlohmann::json& inputs,
                     const UserContext& user, AuditRecord& event) {
    const Skill& skill = find(skill_name);
    if (!skill.not_runnable.empty()) {
      throw SkillError(
          fmt::format("skill '{}' cannot be executed here: {}", skill_name, skill.not_runnable));
    }
    event.query_sha256 = skill.query_sha256;
    if (!inputs.is_object() && !inputs.is_null()) {
      throw SkillError(fmt::format("skill '{}': inputs must be a JSON object", skill_name));
    }
    nlohmann::json effective = inputs.is_null() ? nlohmann::json::object() : inputs;
    // The authenticated caller, never a value the inputs could forge.
    effective["user_context"] = {
        {"user_id", user.user_id}, {"username", user.username}, {"roles", user.roles}};
    std::vector<std::string> missing;
    for (const std::string& name : skill.info.requires_inputs) {
      if (find_input(effective, name) == nullptr) missing.push_back(name);
    }
    if (!missing.empty()) {
      throw SkillError(fmt::format("skill '{}' requires input{} {} (missing)", skill_name,
                                   missing.size() > 1 ? "s" : "", fmt::join(missing, ", ")));
    }
    const std::vector<Param> params = skill.compiled->bind(effective, skill_name);

    auto [lease, kind] = acquire(skill, user, event);
    return lease->execute(skill.compiled->render(kind), params, skill.timeout);
  }

  std::pair<ConnectionPool::Lease, DbKind> acquire(const Skill& skill, const UserContext& user,
                                                   AuditRecord& event) {
    std::string ref = skill.credential_ref;
    ConnectionOverrides overrides;
    if (ref.empty() && !skill.db_config_file.empty()) {
      DbConfig config = read_db_config(skill);
      ref = std::move(config.credential_ref);
      overrides = std::move(config.overrides);
    }
    if (!ref.empty()) return acquire_credential(user, ref, overrides, event);

    const char* url = options_.database_url_fallback ? std::getenv("DATABASE_URL") : nullptr;
    if (url == nullptr || *url == '\0') {
      throw SkillError(fmt::format(
          "skill '{}' names no credential: set action.credential_ref or action.db_config_file{}",
          skill.info.name,
          options_.database_url_fallback ? " (DATABASE_URL is not set either)" : ""));
    }
    event.name = "DATABASE_URL";
    const SecretString secret_url(url);
    // Keyed by a hash, so the pool holds no URL (and a changed URL is a new key).
    const PoolKey key{"", "DATABASE_URL:" + hex_sha256(secret_url.reveal()), 0, ""};
    ConnectionParams params = parse_database_url(secret_url.reveal());
    if (auto lease = pool_.try_acquire(key)) return {std::move(*lease), params.kind};
    return {pool_.adopt(key, connect(params)), params.kind};
  }

  struct Resolved {
    std::string owner;
    std::string credential_id;
    std::string name;
    DbKind kind;
    std::uint64_t version = 0;
    // The vault's change stamp taken before `version` was read: while the
    // vault still shows it, nothing was written since, so the version (and
    // the authorization that came with it) still hold.
    std::optional<internal::ChangeStamp> checked_at;
  };

  std::pair<ConnectionPool::Lease, DbKind> acquire_credential(const UserContext& user,
                                                              const std::string& ref,
                                                              const ConnectionOverrides& overrides,
                                                              AuditRecord& event) {
    const std::string target = fingerprint(overrides);
    // Authorization depends on the roles only through admin: it is part of
    // the key, so an answer given to an administrator never serves the same
    // user id without the role.
    const CacheKey cache_key{user.user_id, user.is_admin(), ref};

    // Fast path: a connection for the credential's current version is idle.
    // current_version authorizes `user` and decrypts nothing; it is asked by
    // credential id so that a deleted-and-recreated name is not mistaken for
    // the credential we connected to. It is not asked again while the
    // vault's change stamp stays the same (a read of the SQLite log's index
    // instead of the lookups, their ledger check and the id check).
    std::optional<Resolved> cached;
    {
      std::lock_guard lock(cache_mutex_);
      if (const auto it = cache_.find(cache_key); it != cache_.end()) cached = it->second;
    }
    if (cached) {
      std::optional<std::uint64_t> version;
      const auto stamp = vault_.impl().change_stamp();
      if (stamp && stamp == cached->checked_at) {
        version = cached->version;
      } else {
        try {
          version = vault_.impl().current_version(user, cached->credential_id);
          std::lock_guard lock(cache_mutex_);
          if (const auto it = cache_.find(cache_key);
              it != cache_.end() && it->second.credential_id == cached->credential_id) {
            it->second.version = *version;
            it->second.checked_at = stamp;
          }
        } catch (const CredentialNotFoundError&) {
          std::lock_guard lock(cache_mutex_);
          if (const auto it = cache_.find(cache_key);
              it != cache_.end() && it->second.credential_id == cached->credential_id) {
            cache_.erase(it);
          }
        }
      }
      if (version) {
        event.owner = cached->owner;
        event.name = cached->name;
        pool_.retire_older(cached->owner, cached->credential_id, *version);
        if (auto lease =
                pool_.try_acquire({cached->owner, cached->credential_id, *version, target})) {
          return {std::move(*lease), cached->kind};
        }
      }
    }

    // Slow path: read (and decrypt) the credential, connect.
    const auto stamp = vault_.impl().change_stamp();
    Credential credential = vault_.get_credential(user, ref);
    event.owner = credential.owner;
    event.name = credential.name;
    ConnectionParams params = connection_params(credential, overrides);
    {
      std::lock_guard lock(cache_mutex_);
      cache_.insert_or_assign(cache_key,
                              Resolved{credential.owner, credential.credential_id, credential.name,
                                       params.kind, credential.version, stamp});
    }
    pool_.retire_older(credential.owner, credential.credential_id, credential.version);
    PoolKey key{credential.owner, credential.credential_id, credential.version, target};
    if (auto lease = pool_.try_acquire(key)) return {std::move(*lease), params.kind};
    return {pool_.adopt(key, connect(params)), params.kind};
  }

  Vault& vault_;
  const SkillRunnerOptions options_;
  std::map<std::string, Skill, std::less<>> skills_;
  std::vector<SkillProblem> problems_;
  std::map<std::string, std::size_t> broken_;  // folder or skill name -> problems_ index
  ConnectionPool pool_;
  std::mutex cache_mutex_;
  using CacheKey = std::tuple<std::string, bool, std::string>;  // user id, admin, ref
  std::map<CacheKey, Resolved> cache_;
};

ConnectionPool& skill_runner_pool(SkillRunner& runner);

}  // namespace internal

SkillRunner SkillRunner::open(Vault& vault, SkillRunnerOptions options) {
  auto impl = std::make_unique<internal::SkillRunnerImpl>(vault, std::move(options));
  impl->load();
  return SkillRunner(std::move(impl));
}

SkillRunner::SkillRunner(std::unique_ptr<internal::SkillRunnerImpl> impl)
    : impl_(std::move(impl)) {}
SkillRunner::SkillRunner(SkillRunner&&) noexcept = default;
SkillRunner& SkillRunner::operator=(SkillRunner&&) noexcept = default;
SkillRunner::~SkillRunner() = default;

nlohmann::json SkillRunner::execute(std::string_view skill_name, const nlohmann::json& inputs,
                                    const UserContext& user) {
  return impl_->execute(skill_name, inputs, user);
}

std::future<nlohmann::json> SkillRunner::execute_async(std::string skill_name,
                                                       nlohmann::json inputs, UserContext user) {
  // The impl, not `this`: a SkillRunner may be moved while the task runs.
  internal::SkillRunnerImpl* impl = impl_.get();
  return std::async(std::launch::async,
                    [impl, name = std::move(skill_name), in = std::move(inputs),
                     who = std::move(user)] { return impl->execute(name, in, who); });
}

std::vector<SkillInfo> SkillRunner::skills() const { return impl_->skills(); }

const std::vector<SkillProblem>& SkillRunner::problems() const { return impl_->problems(); }

std::filesystem::path skills_dir_from_environment() {
  const char* dir = std::getenv("CREDENTIAL_SKILLS_DIR");
  return dir != nullptr && *dir != '\0' ? std::filesystem::path(dir)
                                        : std::filesystem::path("skills");
}

namespace {

SkillRunner& default_runner() {
  static std::mutex mutex;
  static std::unique_ptr<SkillRunner> runner;
  std::lock_guard lock(mutex);
  if (!runner) {
    runner = std::make_unique<SkillRunner>(
        SkillRunner::open(get_vault(), {.skills_dir = skills_dir_from_environment()}));
  }
  return *runner;
}

}  // namespace

nlohmann::json execute_skill(std::string_view skill_name, const nlohmann::json& inputs,
                             const UserContext& user_context) {
  return default_runner().execute(skill_name, inputs, user_context);
}

std::future<nlohmann::json> execute_skill_async(std::string skill_name, nlohmann::json inputs,
                                                UserContext user_context) {
  return default_runner().execute_async(std::move(skill_name), std::move(inputs),
                                        std::move(user_context));
}

}  // namespace credentials
