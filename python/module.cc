// _secure_credentials: the C++ half of the Python package secure_credentials.
//
// A thin layer over the public API (include/credentials/); the Python half
// (python/secure_credentials/) gives it the Python system's names, keyword
// arguments and models. Every call that can block (disk, network, locks, key
// derivation, a skill's query) releases the GIL, so threads sharing a vault
// run in parallel.
//
// Secrets: a password or key comes in as a Secret (made by seal(), repr
// "<secret>"), so that no error message pybind11 writes about a call's
// arguments can quote it; it goes out as a str only from
// Credential.password() and Credential.connection_string(), the two places
// the Python API returns one. Errors are raised as the Python classes the
// Python half registers (set_error_classes), with the library's messages,
// which never hold a secret.
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "credentials/credentials.h"

namespace py = pybind11;
using namespace credentials;

// A UserContext from any object with user_id, username and roles attributes:
// the package's UserContext, or the framework's own.
template <>
struct pybind11::detail::type_caster<UserContext> {
  PYBIND11_TYPE_CASTER(UserContext, const_name("UserContext"));

  bool load(handle source, bool /*convert*/) {
    if (!hasattr(source, "user_id") || !hasattr(source, "username") || !hasattr(source, "roles")) {
      return false;
    }
    make_caster<std::string> id, name;
    make_caster<std::vector<std::string>> roles;
    if (!id.load(source.attr("user_id"), false) || !name.load(source.attr("username"), false) ||
        !roles.load(source.attr("roles"), true)) {
      return false;
    }
    value = {.user_id = cast_op<std::string&&>(std::move(id)),
             .username = cast_op<std::string&&>(std::move(name)),
             .roles = cast_op<std::vector<std::string>&&>(std::move(roles))};
    return true;
  }
};

namespace {

using Release = py::call_guard<py::gil_scoped_release>;

// A password or key on its way in; wiped when Python drops it.
struct Secret {
  SecretString value;
};

Secret seal(py::handle text) {
  if (!PyUnicode_Check(text.ptr())) throw py::type_error("a password or key must be a str");
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
  if (data == nullptr) {
    // The codec's message quotes the offending character: not passed on.
    PyErr_Clear();
    throw py::value_error("a password or key must be valid Unicode text (no lone surrogates)");
  }
  return {SecretString(std::string_view(data, static_cast<std::size_t>(size)))};
}

// A secret as a str. Bytes that are not UTF-8 (a password stored by another
// tool) become surrogate escapes instead of an error that would quote them.
py::str reveal_str(const SecretString& secret) {
  PyObject* text = PyUnicode_DecodeUTF8(secret.reveal().data(),
                                        static_cast<Py_ssize_t>(secret.size()), "surrogateescape");
  if (text == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(text);
}

// A class of the datetime module, looked up once (and kept for the life of
// the process, as the module's own types are).
py::handle datetime_class(const char* name) {
  return py::object(py::module_::import("datetime").attr(name)).release();
}

// Timestamps as naive UTC datetimes, as the Python system's models hold them.
py::object to_datetime(Timestamp t) {
  using namespace std::chrono;
  static const py::handle datetime = datetime_class("datetime");
  const auto day = floor<days>(t);
  const year_month_day date{day};
  const hh_mm_ss<microseconds> time{t - day};
  return datetime(static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                  static_cast<unsigned>(date.day()), time.hours().count(), time.minutes().count(),
                  time.seconds().count(), time.subseconds().count());
}

py::object to_datetime(const std::optional<Timestamp>& t) {
  return t ? to_datetime(*t) : py::none();
}

// The Python class raised for each ErrorCode (set by the Python half).
std::array<PyObject*, 11> error_classes{};

PyObject* error_class(ErrorCode code) {
  const auto index = static_cast<std::size_t>(code);
  if (index < error_classes.size() && error_classes[index] != nullptr) return error_classes[index];
  if (error_classes[static_cast<std::size_t>(ErrorCode::kInternal)] != nullptr) {
    return error_classes[static_cast<std::size_t>(ErrorCode::kInternal)];
  }
  return PyExc_RuntimeError;
}

void set_error_classes(const py::dict& classes) {
  for (auto [code, cls] : classes) {
    const auto index = code.cast<std::size_t>();
    if (index >= error_classes.size()) throw py::value_error("unknown error code");
    // Kept for the life of the process, as the module's own types are.
    error_classes[index] = cls.inc_ref().ptr();
  }
}

ConnectionOverrides overrides_of(std::optional<std::string> host, std::optional<int> port,
                                 std::optional<std::string> database) {
  return {.host = std::move(host), .port = port, .database = std::move(database)};
}

// Binds the fields every credential has (CredentialInfo).
template <typename Class>
void bind_credential_fields(Class& cls) {
  cls.def_readonly("credential_id", &CredentialInfo::credential_id)
      .def_readonly("owner", &CredentialInfo::owner)
      .def_readonly("name", &CredentialInfo::name)
      .def_readonly("db_type", &CredentialInfo::db_type)
      .def_readonly("host", &CredentialInfo::host)
      .def_readonly("port", &CredentialInfo::port)
      .def_readonly("database", &CredentialInfo::database)
      .def_readonly("username", &CredentialInfo::username)
      .def_readonly("description", &CredentialInfo::description)
      .def_readonly("ssl_mode", &CredentialInfo::ssl_mode)
      .def_readonly("connection_timeout", &CredentialInfo::connection_timeout)
      .def_readonly("version", &CredentialInfo::version)
      .def_property_readonly("created_at",
                             [](const CredentialInfo& c) { return to_datetime(c.created_at); })
      .def_property_readonly("updated_at",
                             [](const CredentialInfo& c) { return to_datetime(c.updated_at); })
      .def_property_readonly("last_used",
                             [](const CredentialInfo& c) { return to_datetime(c.last_used); });
}

std::string dump(const nlohmann::json& result) {
  return result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json parse_inputs(const std::string& inputs_json) {
  // Made by json.dumps in the Python half; a parse error would quote the
  // inputs, so it is not passed on.
  nlohmann::json inputs = nlohmann::json::parse(inputs_json, nullptr, /*allow_exceptions=*/false);
  if (inputs.is_discarded() || !inputs.is_object()) {
    throw InvalidArgumentError("the skill's inputs must be a JSON object");
  }
  return inputs;
}

}  // namespace

PYBIND11_MODULE(_secure_credentials, m) {
  m.doc() = "The C++ half of secure_credentials: use the package, not this module.";
  m.def("set_error_classes", &set_error_classes);
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const Error& e) {
      PyErr_SetString(error_class(e.code()), e.what());
    }
  });

  py::class_<Secret>(m, "Secret").def("__repr__", [](const Secret&) { return "<secret>"; });
  m.def("seal", &seal, py::arg("text"));

  m.def("generate_master_key", [] { return reveal_str(generate_master_key()); });
  m.def("default_port", &default_port, py::arg("db_type"));

  py::class_<CredentialInfo> info(m, "CredentialInfo");
  bind_credential_fields(info);
  py::class_<Credential, CredentialInfo> credential(m, "Credential");
  credential
      .def("password", [](const Credential& c) { return reveal_str(c.password); })
      // The URL for these fields with the stored password: the Python half
      // passes the fields as its DatabaseCredential holds them now.
      .def(
          "connection_string",
          [](const Credential& c, std::string db_type, std::string host, int port,
             std::string database, std::string username, std::string ssl_mode,
             int connection_timeout) {
            Credential fields;
            fields.db_type = std::move(db_type);
            fields.host = std::move(host);
            fields.port = port;
            fields.database = std::move(database);
            fields.username = std::move(username);
            fields.ssl_mode = std::move(ssl_mode);
            fields.connection_timeout = connection_timeout;
            fields.password = c.password.clone();
            return reveal_str(build_connection_string(fields));
          },
          py::arg("db_type"), py::arg("host"), py::arg("port"), py::arg("database"),
          py::arg("username"), py::arg("ssl_mode"), py::arg("connection_timeout"))
      .def("__repr__", [](const Credential& c) { return "<Credential " + c.credential_id + ">"; })
      // Immutable: a copy is the same object (dataclasses.replace, copy.copy).
      .def("__copy__", [](py::object self) { return self; })
      .def("__deepcopy__", [](py::object self, py::object) { return self; });

  py::class_<CredentialVersion>(m, "CredentialVersion")
      .def_readonly("version", &CredentialVersion::version)
      .def_property_readonly("updated_at",
                             [](const CredentialVersion& v) { return to_datetime(v.updated_at); })
      .def_readonly("key_id", &CredentialVersion::key_id)
      .def_readonly("current", &CredentialVersion::current);

  py::class_<AuditEvent>(m, "AuditEvent")
      .def_readonly("seq", &AuditEvent::seq)
      .def_property_readonly("time", [](const AuditEvent& e) { return to_datetime(e.time); })
      .def_readonly("actor", &AuditEvent::actor)
      .def_readonly("roles", &AuditEvent::roles)
      .def_readonly("action", &AuditEvent::action)
      .def_readonly("owner", &AuditEvent::owner)
      .def_readonly("name", &AuditEvent::name)
      .def_readonly("outcome", &AuditEvent::outcome)
      .def_readonly("error", &AuditEvent::error)
      .def_readonly("skill", &AuditEvent::skill)
      .def_readonly("query_sha256", &AuditEvent::query_sha256)
      .def_readonly("pid", &AuditEvent::pid);

  py::class_<AuditVerification>(m, "AuditVerification")
      .def_readonly("ok", &AuditVerification::ok)
      .def_readonly("events", &AuditVerification::events)
      .def_readonly("first_bad_seq", &AuditVerification::first_bad_seq)
      .def_readonly("problem", &AuditVerification::problem);

  py::class_<AuditHead>(m, "AuditHead")
      .def_readonly("seq", &AuditHead::seq)
      .def_readonly("mac_hex", &AuditHead::mac_hex)
      .def_readonly("vault_id_hex", &AuditHead::vault_id_hex)
      .def_property_readonly("checkpoint", &AuditHead::checkpoint);

  py::class_<KeyInfo>(m, "KeyInfo")
      .def_readonly("key_id", &KeyInfo::key_id)
      .def_readonly("purpose", &KeyInfo::purpose)
      .def_property_readonly("created_at",
                             [](const KeyInfo& k) { return to_datetime(k.created_at); })
      .def_readonly("encryptions", &KeyInfo::encryptions)
      .def_readonly("records", &KeyInfo::records)
      .def_readonly("current", &KeyInfo::current);

  py::class_<ReencryptProgress>(m, "ReencryptProgress")
      .def_readonly("done", &ReencryptProgress::done)
      .def_readonly("total", &ReencryptProgress::total)
      .def_readonly("target_key_id", &ReencryptProgress::target_key_id);

  py::class_<VerifyReport>(m, "VerifyReport")
      .def_readonly("credentials", &VerifyReport::credentials)
      .def_readonly("versions", &VerifyReport::versions)
      .def_readonly("problems", &VerifyReport::problems)
      .def_readonly("audit", &VerifyReport::audit)
      .def("ok", &VerifyReport::ok);

  py::class_<ImportedCredential>(m, "ImportedCredential")
      .def_readonly("legacy_id", &ImportedCredential::legacy_id)
      .def_readonly("owner", &ImportedCredential::owner)
      .def_readonly("legacy_name", &ImportedCredential::legacy_name)
      .def_readonly("name", &ImportedCredential::name)
      .def_readonly("status", &ImportedCredential::status)
      .def_readonly("reason", &ImportedCredential::reason);

  py::class_<ImportReport>(m, "ImportReport")
      .def_readonly("credentials", &ImportReport::credentials)
      .def_readonly("imported", &ImportReport::imported)
      .def_readonly("renamed", &ImportReport::renamed)
      .def_readonly("skipped", &ImportReport::skipped)
      .def_readonly("invalid", &ImportReport::invalid)
      .def_readonly("dry_run", &ImportReport::dry_run);

  py::class_<ConnectionTestResult>(m, "ConnectionTestResult")
      .def_readonly("server_version", &ConnectionTestResult::server_version)
      .def_property_readonly("round_trip", [](const ConnectionTestResult& r) {
        static const py::handle timedelta = datetime_class("timedelta");
        return timedelta(py::arg("microseconds") = r.round_trip.count());
      });

  py::class_<Vault>(m, "Vault")
      .def_static(
          "open",
          [](const std::string& directory, const std::string& url, const Secret* master_key) {
            VaultOptions options;
            options.directory = directory;
            options.url = url;
            options.master_key =
                master_key != nullptr ? master_key->value.clone() : master_key_from_environment();
            return Vault::open(std::move(options));
          },
          py::arg("directory"), py::arg("url"), py::arg("master_key").none(true), Release())
      .def(
          "store_credential",
          [](Vault& vault, const UserContext& user, std::string name, std::string db_type,
             std::string host, int port, std::string database, std::string username,
             const Secret& password, std::string description, std::string ssl_mode,
             int connection_timeout) {
            return vault.store_credential(user, {.name = std::move(name),
                                                 .db_type = std::move(db_type),
                                                 .host = std::move(host),
                                                 .port = port,
                                                 .database = std::move(database),
                                                 .username = std::move(username),
                                                 .password = password.value.clone(),
                                                 .description = std::move(description),
                                                 .ssl_mode = std::move(ssl_mode),
                                                 .connection_timeout = connection_timeout});
          },
          Release())
      .def(
          "get_credential",
          [](Vault& vault, const UserContext& user, const std::string& ref) {
            return vault.get_credential(user, ref);
          },
          Release())
      .def("list_credentials", &Vault::list_credentials, Release())
      .def(
          "update_password",
          [](Vault& vault, const UserContext& user, const std::string& ref, const Secret& password,
             std::optional<std::uint64_t> expected_version) {
            return expected_version
                       ? vault.update_password(user, ref, password.value.clone(), *expected_version)
                       : vault.update_password(user, ref, password.value.clone());
          },
          Release())
      .def(
          "update_credential",
          [](Vault& vault, const UserContext& user, const std::string& ref,
             std::optional<std::string> db_type, std::optional<std::string> host,
             std::optional<int> port, std::optional<std::string> database,
             std::optional<std::string> username, std::optional<std::string> description,
             std::optional<std::string> ssl_mode, std::optional<int> connection_timeout,
             const Secret* password, std::optional<std::uint64_t> expected_version) {
            CredentialChanges changes{.db_type = std::move(db_type),
                                      .host = std::move(host),
                                      .port = port,
                                      .database = std::move(database),
                                      .username = std::move(username),
                                      .description = std::move(description),
                                      .ssl_mode = std::move(ssl_mode),
                                      .connection_timeout = connection_timeout};
            if (password != nullptr) changes.password = password->value.clone();
            return vault.update_credential(user, ref, std::move(changes), expected_version);
          },
          Release())
      .def(
          "delete_credential",
          [](Vault& vault, const UserContext& user, const std::string& ref) {
            vault.delete_credential(user, ref);
          },
          Release())
      .def(
          "history",
          [](Vault& vault, const UserContext& user, const std::string& ref) {
            return vault.history(user, ref);
          },
          Release())
      .def(
          "rollback",
          [](Vault& vault, const UserContext& user, const std::string& ref, std::uint64_t version) {
            return vault.rollback(user, ref, version);
          },
          Release())
      .def(
          "audit_events",
          [](Vault& vault, const UserContext& user, std::optional<std::string> owner,
             std::optional<std::string> name, std::optional<std::string> action,
             std::optional<std::int64_t> since_us, std::size_t limit) {
            AuditQuery query{.owner = std::move(owner),
                             .name = std::move(name),
                             .action = std::move(action),
                             .limit = limit};
            if (since_us) query.since = Timestamp(std::chrono::microseconds(*since_us));
            return vault.audit_events(user, query);
          },
          Release())
      .def(
          "verify_audit",
          [](Vault& vault, const std::vector<std::string>& checkpoints) {
            return vault.verify_audit(checkpoints);
          },
          py::arg("checkpoints") = std::vector<std::string>{}, Release())
      .def("audit_head", &Vault::audit_head, Release())
      .def(
          "rotate_master_key",
          [](Vault& vault, const Secret& key) { vault.rotate_master_key(key.value.clone()); },
          Release())
      .def("rotate_data_key", &Vault::rotate_data_key, Release())
      .def(
          "reencrypt", [](Vault& vault, std::size_t batch) { return vault.reencrypt({}, batch); },
          Release())
      .def("keys", &Vault::keys, Release())
      .def(
          "backup", [](Vault& vault, const std::string& out) { vault.backup(out); }, Release())
      .def("verify", &Vault::verify, Release())
      .def(
          "import_legacy",
          [](Vault& vault, const std::string& vault_enc, const Secret& legacy_key, bool dry_run,
             bool skip_invalid) {
            return vault.import_legacy(vault_enc, legacy_key.value, dry_run, skip_invalid);
          },
          Release())
      .def(
          "test_credential",
          [](Vault& vault, const UserContext& user, const std::string& ref,
             std::optional<std::string> host, std::optional<int> port,
             std::optional<std::string> database) {
            return test_credential(vault, user, ref,
                                   overrides_of(std::move(host), port, std::move(database)));
          },
          Release())
      .def_property_readonly("directory",
                             [](const Vault& vault) { return vault.directory().string(); });

  // The process-wide vault of the environment (CREDENTIAL_VAULT_DIR, ...):
  // the one the process-wide execute_skill uses. Never freed by Python.
  m.def("get_vault", &credentials::get_vault, py::return_value_policy::reference, Release());

  py::class_<SkillRunner>(m, "SkillRunner")
      .def(py::init([](Vault& vault, const std::string& skills_dir, bool database_url_fallback) {
             return SkillRunner::open(
                 vault, {.skills_dir = skills_dir, .database_url_fallback = database_url_fallback});
           }),
           py::keep_alive<1, 2>(), Release())
      .def(
          "execute",
          [](SkillRunner& runner, const std::string& skill_name, const std::string& inputs_json,
             const UserContext& user) {
            return dump(runner.execute(skill_name, parse_inputs(inputs_json), user));
          },
          Release())
      .def("skills",
           [](const SkillRunner& runner) {
             std::vector<std::string> names;
             for (const SkillInfo& skill : runner.skills()) names.push_back(skill.name);
             return names;
           })
      .def("problems", [](const SkillRunner& runner) {
        std::vector<std::string> problems;
        for (const SkillProblem& problem : runner.problems())
          problems.push_back(problem.to_string());
        return problems;
      });

  // The process-wide runner: skills_dir_from_environment() over get_vault().
  m.def(
      "execute_skill",
      [](const std::string& skill_name, const std::string& inputs_json, const UserContext& user) {
        return dump(credentials::execute_skill(skill_name, parse_inputs(inputs_json), user));
      },
      Release());
}
