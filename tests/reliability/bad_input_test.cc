// Bad input: names, user ids, hosts, ports, db types, passwords, references,
// skill files and JSON inputs at and beyond their limits (empty, the limit,
// one past it, 1 MiB, NUL bytes, invalid UTF-8). Each must give a clear
// error (InvalidArgumentError / SkillError / for the legacy importer also
// DecryptionFailedError) with a short message that does not echo the input,
// store nothing, and crash nothing. The values at the limit must be accepted:
// otherwise the test would not know where the limit is.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "credentials/credentials.h"
#include "credentials/skills.h"
#include "legacy/fernet.h"
#include "legacy/legacy_vault.h"
#include "reliability/reliability.h"
#include "support/temp_dir.h"

namespace credentials {
namespace {

using testing::TempDir;
using namespace std::string_literals;

const UserContext kAlice{"alice", "alice", {"user"}};
const UserContext kAdmin{"root", "root", {"admin"}};
const std::string kMiB(1 << 20, 'a');

NewCredential valid() {
  return {.name = "db", .db_type = "postgres", .host = "db.example.com", .port = 5432,
          .database = "prod", .username = "svc", .password = "pw"};
}

struct Figures {
  int rejected = 0;
  int accepted_at_limit = 0;
  int failures = 0;
};

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override { vault_.emplace(Vault::open({.directory = dir_.path() / "v", .master_key = generate_master_key()})); }

  std::size_t stored() { return vault_->list_credentials(kAdmin).size(); }

  // `f` must throw an error of type E with a short message; nothing stored.
  template <typename E = InvalidArgumentError>
  void expect_rejected(const std::string& what, const std::function<void()>& f) {
    const std::size_t before = stored();
    try {
      f();
      ++figures_.failures;
      ADD_FAILURE() << what << ": accepted";
    } catch (const E& e) {
      const std::string message = e.what();
      if (message.empty() || message.size() > 600) {
        ++figures_.failures;
        ADD_FAILURE() << what << ": unclear message (" << message.size() << " bytes)";
      } else {
        ++figures_.rejected;
      }
    } catch (const std::exception& e) {
      ++figures_.failures;
      ADD_FAILURE() << what << ": wrong error type: " << typeid(e).name() << ": " << e.what();
    }
    if (stored() != before) {
      ++figures_.failures;
      ADD_FAILURE() << what << ": something was stored";
    }
  }

  void expect_accepted(const std::string& what, const std::function<void()>& f) {
    try {
      f();
      ++figures_.accepted_at_limit;
    } catch (const std::exception& e) {
      ++figures_.failures;
      ADD_FAILURE() << what << ": a value at the limit was refused: " << e.what();
    }
  }

  void store_with(const std::string& what, const std::function<void(NewCredential&)>& change) {
    expect_rejected(what, [&] {
      NewCredential c = valid();
      c.name = fmt::format("case{}", ++cases_);  // a store that slips through cannot hide the next
      change(c);
      (void)vault_->store_credential(kAlice, std::move(c));
    });
  }

  TempDir dir_;
  std::optional<Vault> vault_;
  Figures figures_;
  int cases_ = 0;
};

// Values every free-text field must refuse.
const std::vector<std::pair<std::string, std::string>> kBadText = {
    {"1 MiB", kMiB},
    {"a NUL byte", "ab\0cd"s},
    {"a newline", "ab\ncd"},
    {"invalid UTF-8 (lone continuation byte)", "ab\x80" "cd"},
    {"invalid UTF-8 (truncated sequence)", "ab\xe2\x82"},
    {"invalid UTF-8 (overlong NUL)", "ab\xc0\x80" "cd"},
};

const std::vector<std::pair<std::string, std::string>> kBadIdentifiers = {
    {"empty", ""},
    {"129 characters", std::string(129, 'n')},
    {"1 MiB", kMiB},
    {"a NUL byte", "ab\0cd"s},
    {"invalid UTF-8", "ab\xff"},
    {"a newline", "a\nb"},
    {"an escape sequence", "a\x1b[2Jb"},
    {"a C1 control", "a\u0085b"},
    {"a zero-width space", "a\u200Bb"},
    {"a right-to-left override", "admin\u202Egpj"},
    {"a byte order mark", "\uFEFFalice"},
    {"129 bytes of two-byte letters", "n" +
                                          [] {
                                            std::string s;
                                            for (int i = 0; i < 64; ++i) s += "ж";
                                            return s;
                                          }()},
};

TEST_F(BadInputTest, CredentialFieldsBeyondTheirLimitsAreRefused) {
  for (const auto& [label, value] : kBadIdentifiers) {
    store_with("name " + label, [&](NewCredential& c) { c.name = value; });
    expect_rejected("user id " + label, [&] {
      (void)vault_->store_credential({value, "x", {"user"}}, valid());
    });
    expect_rejected("user id " + label + " (list)", [&] { (void)vault_->list_credentials({value, "x", {"user"}}); });
    expect_rejected("user id " + label + " (get)", [&] { (void)vault_->get_credential({value, "x", {"user"}}, "db"); });
  }
  expect_accepted("name of 128 characters", [&] {
    NewCredential c = valid();
    c.name = std::string(128, 'n');
    (void)vault_->store_credential(kAlice, std::move(c));
  });
  expect_accepted("user id of 128 characters", [&] {
    (void)vault_->store_credential({std::string(128, 'u'), "x", {"user"}}, valid());
  });

  for (const auto& [label, value] : kBadText) {
    store_with("host " + label, [&](NewCredential& c) { c.host = value; });
    store_with("database " + label, [&](NewCredential& c) { c.database = value; });
    store_with("username " + label, [&](NewCredential& c) { c.username = value; });
    if (label != "a newline") {  // a description may run over lines
      store_with("description " + label, [&](NewCredential& c) { c.description = value; });
    }
  }
  // Any other text is a name (the Python version took any): spaces, other
  // scripts, punctuation.
  for (const std::string& name : {"nämé"s, "a b"s, "../etc"s, "a'b"s, "база данных"s}) {
    expect_accepted("name " + name, [&] {
      NewCredential c = valid();
      c.name = name;
      (void)vault_->store_credential({name, "x", {"user"}}, std::move(c));
      EXPECT_EQ(vault_->get_credential({name, "x", {"user"}}, name).name, name);
    });
  }
  store_with("empty host", [](NewCredential& c) { c.host = ""; });
  store_with("host of 256 bytes", [](NewCredential& c) { c.host = std::string(256, 'h'); });
  store_with("database of 1025 bytes", [](NewCredential& c) { c.database = std::string(1025, 'd'); });
  expect_accepted("host of 255 bytes and database of 1024", [&] {
    NewCredential c = valid();
    c.name = "limits";
    c.host = std::string(255, 'h');
    c.database = std::string(1024, 'd');
    (void)vault_->store_credential(kAlice, std::move(c));
  });

  for (int port : {-1, 65536, 1 << 30, -2147483647 - 1}) {
    store_with(fmt::format("port {}", port), [&](NewCredential& c) { c.port = port; });
  }
  expect_accepted("port 65535", [&] {
    NewCredential c = valid();
    c.name = "port_max";
    c.port = 65535;
    (void)vault_->store_credential(kAlice, std::move(c));
  });
  // Any other db type is kept as given, if it is text a name could be.
  for (const std::string& type : {""s, "postgres\0"s, "postgres\n"s, kMiB, "\xff"s}) {
    store_with("db type '" + type.substr(0, 10) + "'", [&](NewCredential& c) { c.db_type = type; });
  }
  for (const std::string& mode : {"none"s, "REQUIRE\0"s, kMiB}) {
    store_with("ssl mode", [&](NewCredential& c) { c.ssl_mode = mode; });
  }
  for (int timeout : {0, -1, 3601}) {
    store_with(fmt::format("connection timeout {}", timeout), [&](NewCredential& c) { c.connection_timeout = timeout; });
  }
  store_with("password of 4097 bytes", [](NewCredential& c) { c.password = std::string(4097, 'p'); });
  store_with("password of 1 MiB", [](NewCredential& c) { c.password = kMiB; });
  store_with("password with a NUL byte", [](NewCredential& c) { c.password = "ab\0cd"s; });
  expect_accepted("password of 4096 bytes", [&] {
    NewCredential c = valid();
    c.name = "long_pw";
    c.password = std::string(4096, 'p');
    (void)vault_->store_credential(kAlice, std::move(c));
    EXPECT_EQ(vault_->get_credential(kAlice, "long_pw").password.size(), 4096u);
  });

  // Updates refuse the same values and leave the credential as it was.
  (void)vault_->store_credential(kAlice, valid());
  for (const auto& [label, value] : kBadText) {
    expect_rejected("update host " + label, [&] {
      CredentialChanges ch;
      ch.host = value;
      (void)vault_->update_credential(kAlice, "db", std::move(ch));
    });
  }
  expect_rejected("update password of 1 MiB", [&] { (void)vault_->update_password(kAlice, "db", kMiB); });
  EXPECT_EQ(vault_->get_credential(kAlice, "db").version, 1u);
  EXPECT_TRUE(vault_->verify().ok());

  testing::print_figures("bad-input-fields",
                         fmt::format("rejected {}, accepted at the limit {}, failures {}",
                                     figures_.rejected, figures_.accepted_at_limit, figures_.failures));
}

TEST_F(BadInputTest, ReferencesBeyondTheirLimitsAreRefusedOrNotFound) {
  (void)vault_->store_credential(kAlice, valid());
  int clear = 0;
  for (const std::string& ref : {""s, kMiB, "db\0"s, "db\xff"s, std::string(513, 'r'), "'; DROP TABLE x; --"s}) {
    try {
      (void)vault_->get_credential(kAlice, ref);
      ADD_FAILURE() << "a bad reference found a credential";
    } catch (const InvalidArgumentError&) {
      ++clear;
    } catch (const CredentialNotFoundError& e) {
      EXPECT_LT(std::string(e.what()).size(), 700u) << "the reference is echoed whole";
      ++clear;
    }
  }
  testing::print_figures("bad-input-references", fmt::format("refused {} of 6", clear));
  EXPECT_EQ(clear, 6);
}

TEST_F(BadInputTest, MalformedSkillFilesAreSkillErrors) {
  const std::vector<std::pair<std::string, std::string>> files = {
      {"empty", ""},
      {"1 MiB of text", kMiB},
      {"over 1 MiB of valid front matter",
       "---\nname: Big\ndescription: " + std::string((1 << 20) + 10, 'x') + "\nexecutor: action\n---\n"},
      {"NUL bytes", "---\nname: A\0B\nexecutor: action\n---\n"s},
      {"invalid UTF-8", "---\nname: \xff\xfe\nexecutor: action\n---\n"},
      {"no closing ---", "---\nname: A\n"},
      {"YAML that is not a map", "---\n- a\n- b\n---\n"},
      {"unclosed bracket", "---\nname: [A\n---\n"},
      {"name of 10000 characters", "---\nname: " + std::string(10000, 'N') + "\nexecutor: action\n---\n"},
      {"deeply nested YAML", "---\nname: " + std::string(5000, '[') + "\n---\n"},
      {"action is a string", "---\nname: A\nexecutor: action\naction: x\n---\n"},
      {"db_config_file leaving the folder",
       "---\nname: A\nexecutor: action\naction:\n  type: data_query\n  source: sqlite\n  query: SELECT 1\n"
       "  db_config_file: ../../etc/passwd\n---\n"},
      {"timeout not a number",
       "---\nname: A\nexecutor: action\naction:\n  type: data_query\n  source: sqlite\n  query: SELECT 1\n"
       "  timeout: soon\n---\n"},
  };
  int rejected = 0;
  for (const auto& [label, text] : files) {
    const auto file = dir_.path() / "skill.md";
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
    try {
      (void)load_skill(file);
      ADD_FAILURE() << "skill file with " << label << " loaded";
    } catch (const SkillError& e) {
      EXPECT_LT(std::string(e.what()).size(), 1000u) << label << ": the message echoes the input";
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "skill file with " << label << ": wrong error type: " << e.what();
    }
  }
  testing::print_figures("bad-input-skill-files", fmt::format("refused {} of {}", rejected, files.size()));
  EXPECT_EQ(rejected, static_cast<int>(files.size()));
}

TEST_F(BadInputTest, MalformedDbConfigJsonIsASkillErrorAndRunsNothing) {
  const auto skills = dir_.path() / "skills";
  std::filesystem::create_directories(skills / "Cfg");
  std::ofstream(skills / "Cfg" / "skill.md")
      << "---\nname: Cfg\nexecutor: action\naction:\n  type: data_query\n  source: sqlite\n"
         "  query: SELECT 1\n  db_config_file: db_config.json\n---\n";
  // A real credential the valid config would reach, so that a config that
  // slipped through would run (and be noticed) instead of failing later.
  const auto db = dir_.path() / "data.db";
  { std::ofstream touch(db); }
  (void)vault_->store_credential(kAlice, {.name = "real", .db_type = "sqlite", .database = db.string()});
  SkillRunner runner = SkillRunner::open(*vault_, {.skills_dir = skills, .database_url_fallback = false});
  const std::vector<std::pair<std::string, std::string>> configs = {
      {"empty", ""},
      {"1 MiB", "{\"credential_ref\": \"real\", \"x\": \"" + kMiB + "\"}"},
      {"NUL byte", "{\"credential_ref\": \"re\0al\"}"s},
      {"invalid UTF-8", "{\"credential_ref\": \"real\xff\"}"},
      {"not an object", "[\"real\"]"},
      {"no credential_ref", "{\"host\": \"h\"}"},
      {"credential_ref not a string", "{\"credential_ref\": 5}"},
      {"port out of range", "{\"credential_ref\": \"real\", \"port\": 70000}"},
      {"port not an integer", "{\"credential_ref\": \"real\", \"port\": \"5432\"}"},
      {"a password inside", "{\"credential_ref\": \"real\", \"password\": \"x\"}"},
      {"truncated", "{\"credential_ref\": \"re"},
      {"deep nesting", std::string(60000, '[')},
      {"a number too large for a double", "{\"credential_ref\": \"real\", \"port\": 271e432}"},
  };
  int rejected = 0;
  for (const auto& [label, text] : configs) {
    std::ofstream(skills / "Cfg" / "db_config.json", std::ios::binary | std::ios::trunc) << text;
    try {
      (void)runner.execute("Cfg", nlohmann::json::object(), kAlice);
      ADD_FAILURE() << "db_config.json with " << label << " ran";
    } catch (const SkillError& e) {
      EXPECT_LT(std::string(e.what()).size(), 1000u) << label;
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "db_config.json with " << label << ": wrong error type: " << e.what();
    }
  }
  // The control: the valid config runs.
  std::ofstream(skills / "Cfg" / "db_config.json", std::ios::trunc) << R"({"credential_ref": "real"})";
  EXPECT_EQ(runner.execute("Cfg", nlohmann::json::object(), kAlice).value("row_count", -1), 1);
  testing::print_figures("bad-input-db-config", fmt::format("refused {} of {}", rejected, configs.size()));
  EXPECT_EQ(rejected, static_cast<int>(configs.size()));
}

TEST_F(BadInputTest, MalformedLegacyVaultsImportNothing) {
  const auto key_text = std::string(generate_master_key().reveal());
  const auto key = internal::FernetKey::from_text(key_text);
  ASSERT_TRUE(key.has_value());
  const std::vector<std::pair<std::string, std::string>> jsons = {
      {"empty", ""},
      {"1 MiB", "{\"x\": \"" + kMiB + "\"}"},
      {"NUL byte", "{\"a\0\": {}}"s},
      {"invalid UTF-8", "{\"a\xff\": {}}"},
      {"not an object", "[1, 2]"},
      {"entry not an object", "{\"id\": 5}"},
      {"missing fields", "{\"id\": {\"user_id\": \"alice\"}}"},
      {"deep nesting", std::string(100000, '[')},
      {"a number too large for a double", "{\"id\": {\"port\": 271e432}}"},
  };
  int rejected = 0;
  for (const auto& [label, json] : jsons) {
    try {
      (void)internal::parse_legacy_vault_json(json, *key);
      ADD_FAILURE() << "legacy JSON with " << label << " parsed";
    } catch (const InvalidArgumentError&) {
      ++rejected;
    } catch (const DecryptionFailedError&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "legacy JSON with " << label << ": wrong error type: " << e.what();
    }
  }
  // Whole files through the Vault: nothing imported.
  const std::vector<std::pair<std::string, std::string>> files = {
      {"empty file", ""}, {"1 MiB of garbage", kMiB}, {"NUL bytes", std::string(100, '\0')},
      {"invalid UTF-8", "\xff\xfe\xfd"}, {"a token cut short", "gAAAAABk"}};
  for (const auto& [label, bytes] : files) {
    const auto file = dir_.path() / "vault.enc";
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    const std::size_t before = stored();
    try {
      (void)vault_->import_legacy(file, SecretString(key_text));
      ADD_FAILURE() << "legacy vault file with " << label << " imported";
    } catch (const InvalidArgumentError&) {
      ++rejected;
    } catch (const DecryptionFailedError&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "legacy vault file with " << label << ": wrong error type: " << e.what();
    }
    EXPECT_EQ(stored(), before);
  }
  testing::print_figures("bad-input-legacy",
                         fmt::format("refused {} of {}", rejected, jsons.size() + files.size()));
  EXPECT_EQ(rejected, static_cast<int>(jsons.size() + files.size()));
}

TEST_F(BadInputTest, MalformedSkillInputsAreSkillErrors) {
  const auto skills = dir_.path() / "skills";
  std::filesystem::create_directories(skills / "Q");
  std::ofstream(skills / "Q" / "skill.md")
      << "---\nname: Q\nexecutor: action\nrequires:\n  - id\naction:\n  type: data_query\n  source: sqlite\n"
         "  query: SELECT {id} AS v\n  credential_ref: real\n---\n";
  const auto db = dir_.path() / "data.db";
  { std::ofstream touch(db); }
  (void)vault_->store_credential(kAlice, {.name = "real", .db_type = "sqlite", .database = db.string()});
  SkillRunner runner = SkillRunner::open(*vault_, {.skills_dir = skills, .database_url_fallback = false});
  int rejected = 0;
  const std::vector<std::pair<std::string, nlohmann::json>> inputs = {
      {"not an object", nlohmann::json::array({1})},
      {"missing input", nlohmann::json::object()},
      {"null document", nlohmann::json()},
  };
  for (const auto& [label, input] : inputs) {
    try {
      (void)runner.execute("Q", input, kAlice);
      ADD_FAILURE() << "inputs " << label << " ran";
    } catch (const SkillError&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "inputs " << label << ": wrong error type: " << e.what();
    }
  }
  // Big and odd values are data, bound as parameters: they run, and come back.
  for (const std::string& value : {kMiB, "a\0b"s, "'; DROP TABLE x; --"s}) {
    const auto result = runner.execute("Q", {{"id", value}}, kAlice);
    EXPECT_EQ(result["query_result"][0]["v"].get<std::string>().size(), value.size());
  }
  testing::print_figures("bad-input-skill-inputs", fmt::format("refused {} of {}", rejected, inputs.size()));
  EXPECT_EQ(rejected, static_cast<int>(inputs.size()));
}

}  // namespace
}  // namespace credentials
