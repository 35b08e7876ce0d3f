// Fuzzes db_config.json handling through the public SkillRunner: one skill
// whose action names db_config_file, the fuzzed bytes as that file, executed
// against a vault holding no credential. A malformed file is a SkillError;
// a well-formed one gets as far as the credential lookup
// (CredentialNotFoundError) or an argument check (InvalidArgumentError).
// Nothing connects anywhere: there is no credential to connect with.
#include <cstdlib>
#include <optional>

#include "credentials/credentials.h"
#include "credentials/skills.h"
#include "fuzz/fuzz_support.h"

using namespace credentials;

namespace {
struct Fixture {
  std::optional<Vault> vault;
  std::optional<SkillRunner> runner;
  std::filesystem::path config;
  Fixture() {
    const auto dir = credentials::fuzz::scratch_dir();
    std::filesystem::create_directories(dir / "skills" / "Cfg");
    credentials::fuzz::write_file(dir / "skills" / "Cfg" / "skill.md",
                                  "---\nname: Cfg\nexecutor: action\naction:\n  type: data_query\n"
                                  "  source: sqlite\n  query: SELECT {x}\n  db_config_file: db_config.json\n---\n");
    config = dir / "skills" / "Cfg" / "db_config.json";
    credentials::fuzz::write_file(config, "{}");
    vault.emplace(Vault::open({.directory = dir / "vault", .master_key = generate_master_key()}));
    runner.emplace(SkillRunner::open(*vault, {.skills_dir = dir / "skills", .database_url_fallback = false}));
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fixture;
  credentials::fuzz::write_file(fixture.config, credentials::fuzz::as_text(data, size));
  try {
    (void)fixture.runner->execute("Cfg", {{"x", 1}}, {"alice", "alice", {"user"}});
    std::abort();  // the vault holds no credential: nothing can run
  } catch (const SkillError&) {
  } catch (const CredentialNotFoundError&) {
  } catch (const InvalidArgumentError&) {
  } catch (const UnauthorizedError&) {
  }
  return 0;
}
