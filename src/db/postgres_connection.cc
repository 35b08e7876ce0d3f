// PostgreSQL connections through libpq, from structured parameters
// (PQconnectdbParams with expand_dbname = 0: no value is parsed as a URL or a
// conninfo string, so no password character can change its meaning).
#include <poll.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "credentials/errors.h"
#include "db/libpq.h"
#include "db/connection.h"

namespace credentials::internal {
namespace {

// Type OIDs from pg_type.h (stable across server versions).
constexpr Oid kBool = 16, kInt8 = 20, kInt2 = 21, kInt4 = 23, kOid = 26, kJson = 114, kFloat4 = 700,
              kFloat8 = 701, kDate = 1082, kTimestamp = 1114, kTimestampTz = 1184, kNumeric = 1700,
              kJsonb = 3802;

std::string trimmed(const char* text) {
  std::string out = text != nullptr ? text : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// "a\n\tb" -> "a b": libpq's connection messages put each address tried and
// each hint on a line of its own.
std::string one_line(std::string text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t at = 0; at < text.size(); ++at) {
    if (text[at] != '\n') {
      out += text[at];
      continue;
    }
    while (at + 1 < text.size() && (text[at + 1] == '\t' || text[at + 1] == ' ')) ++at;
    out += ' ';
  }
  return out;
}

nlohmann::json integer_or_text(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc() && end == text.data() + text.size()) return value;
  return std::string(text);
}

nlohmann::json number_or_text(std::string_view text) {
  if (text.find_first_of(".eE") == std::string_view::npos) {
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc() && end == text.data() + text.size()) return value;
  }
  // NaN and Infinity have no JSON number: keep them as text.
  if (text.find_first_not_of("0123456789+-.eE") != std::string_view::npos) return std::string(text);
  const std::string copy(text);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) return copy;
  return value;
}

// "2024-01-02 03:04:05.5+00" (DateStyle ISO) -> "2024-01-02T03:04:05.5+00:00".
std::string iso8601(std::string_view text, bool with_zone) {
  std::string out(text);
  if (out.size() > 10 && out[10] == ' ') out[10] = 'T';
  if (with_zone && out.size() > 3) {
    const char sign = out[out.size() - 3];
    if ((sign == '+' || sign == '-') && out.find('T') != std::string::npos) out += ":00";
  }
  return out;
}

nlohmann::json to_json(Oid type, std::string_view text) {
  switch (type) {
    case kBool:
      return text == "t";
    case kInt2:
    case kInt4:
    case kInt8:
    case kOid:
      return integer_or_text(text);
    case kFloat4:
    case kFloat8:
    case kNumeric:
      return number_or_text(text);
    case kTimestamp:
      return iso8601(text, false);
    case kTimestampTz:
      return iso8601(text, true);
    case kDate:
      return std::string(text);
    case kJson:
    case kJsonb: {
      auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      return parsed.is_discarded() ? nlohmann::json(std::string(text)) : parsed;
    }
    default:
      return std::string(text);
  }
}

struct ResultDeleter {
  void operator()(PGresult* r) const { pq::PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

void ignore_notice(void*, const char*) {}

class PostgresConnection final : public Connection {
 public:
  explicit PostgresConnection(PGconn* conn) : conn_(conn) {}
  ~PostgresConnection() override { pq::PQfinish(conn_); }
  PostgresConnection(const PostgresConnection&) = delete;
  PostgresConnection& operator=(const PostgresConnection&) = delete;

  nlohmann::json execute(const std::string& sql, const std::vector<Param>& params,
                         std::optional<std::chrono::milliseconds> timeout) override {
    set_statement_timeout(timeout);

    std::vector<Oid> types;
    std::vector<std::string> texts;
    std::vector<const char*> values;
    types.reserve(params.size());
    texts.reserve(params.size());
    for (const Param& param : params) {
      if (std::holds_alternative<std::nullptr_t>(param)) {
        types.push_back(0);
        texts.emplace_back();
      } else if (const auto* i = std::get_if<std::int64_t>(&param)) {
        types.push_back(kInt8);
        texts.push_back(fmt::format("{}", *i));
      } else if (const auto* d = std::get_if<double>(&param)) {
        types.push_back(kFloat8);
        texts.push_back(fmt::format("{}", *d));
      } else if (const auto* b = std::get_if<bool>(&param)) {
        types.push_back(kBool);
        texts.emplace_back(*b ? "true" : "false");
      } else {
        // Text is sent untyped ("unknown"), so the server gives it the type
        // the context needs: a date, a uuid, a numeric, ...
        types.push_back(0);
        texts.push_back(std::get<std::string>(param));
      }
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      values.push_back(std::holds_alternative<std::nullptr_t>(params[i]) ? nullptr
                                                                         : texts[i].c_str());
    }

    auto run = [&] {
      const std::string& statement = prepared(sql, types);
      const int sent =
          statement.empty()
              ? pq::PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(params.size()), types.data(),
                                      values.data(), nullptr, nullptr, /*resultFormat=*/0)
              : pq::PQsendQueryPrepared(conn_, statement.c_str(), static_cast<int>(params.size()),
                                        values.data(), nullptr, nullptr, /*resultFormat=*/0);
      if (sent == 0) return Result();  // not sent: the connection's message says why
      return last_result();
    };
    Result result = run();
    // A kept statement whose tables changed shape ("cached plan must not
    // change result type", 0A000) would fail at every execution on this
    // connection: it is prepared again, once.
    if (result != nullptr && pq::PQresultStatus(result.get()) == PGRES_FATAL_ERROR &&
        sqlstate_of(result.get()) == "0A000" && is_stale_plan(result.get()) && forget_prepared(sql, types)) {
      result = run();
    }
    const ExecStatusType status =
        result != nullptr ? pq::PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_TUPLES_OK) {
      const int rows = pq::PQntuples(result.get());
      const int columns = pq::PQnfields(result.get());
      nlohmann::json out = nlohmann::json::array();
      for (int r = 0; r < rows; ++r) {
        nlohmann::json row = nlohmann::json::object();
        for (int c = 0; c < columns; ++c) {
          const char* name = pq::PQfname(result.get(), c);
          if (pq::PQgetisnull(result.get(), r, c)) {
            row[name] = nullptr;
          } else {
            row[name] = to_json(
                pq::PQftype(result.get(), c),
                std::string_view(pq::PQgetvalue(result.get(), r, c),
                                 static_cast<std::size_t>(pq::PQgetlength(result.get(), r, c))));
          }
        }
        out.push_back(std::move(row));
      }
      return {{"query_result", std::move(out)}, {"row_count", rows}};
    }
    if (status == PGRES_COMMAND_OK) {
      const char* affected = pq::PQcmdTuples(result.get());
      std::int64_t count = 0;
      if (affected != nullptr && *affected != '\0') count = std::atoll(affected);
      return {{"affected_rows", count}};
    }
    if (status == PGRES_EMPTY_QUERY) throw DatabaseError("PostgreSQL: the query is empty");
    throw query_error(result.get(), params);
  }

  // The statement's result, read to the end of the command as PQexec reads
  // it: the last one, or the first that leaves the connection in a state
  // where nothing more comes (COPY, a broken connection).
  Result last_result() {
    Result last;
    while (PGresult* next = pq::PQgetResult(conn_)) {
      last.reset(next);
      const ExecStatusType status = pq::PQresultStatus(next);
      if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH ||
          pq::PQstatus(conn_) == CONNECTION_BAD) {
        break;
      }
    }
    return last;
  }

  std::string server_version() override {
    const auto result = execute("SELECT version()", {}, std::nullopt);
    std::string version = result["query_result"][0]["version"].get<std::string>();
    // "PostgreSQL 15.18 (Debian ...) on x86_64-pc-linux-gnu, compiled by ...":
    // the platform half is noise for a connection test.
    if (const auto on = version.find(" on "); on != std::string::npos) version.resize(on);
    return version;
  }

  [[nodiscard]] bool reusable() override {
    if (!healthy()) return false;
    // An idle connection has nothing to read. Anything readable is the
    // server's goodbye (a FATAL message, EOF) or unsolicited state: either
    // way, do not run a statement on it.
    pollfd fd{pq::PQsocket(conn_), POLLIN, 0};
    return ::poll(&fd, 1, 0) == 0;
  }

  [[nodiscard]] bool healthy() const override {
    // A connection left inside a transaction (the skill ran BEGIN, or a
    // statement failed inside one) is not handed to the next execution.
    return pq::PQstatus(conn_) == CONNECTION_OK && pq::PQtransactionStatus(conn_) == PQTRANS_IDLE;
  }

 private:
  // The name of the server-side prepared statement for `sql` with these
  // parameter types, preparing it on first use: a pooled connection then
  // parses and plans each skill's statement once, not at every execution.
  // Empty when the statement cannot be prepared (PREPARE takes only SELECT,
  // INSERT, UPDATE, DELETE, MERGE and VALUES; or it fails now): it is then
  // sent whole with PQsendQueryParams, whose result reports its error if it has one.
  const std::string& prepared(const std::string& sql, const std::vector<Oid>& types) {
    std::string key = statement_key(sql, types);
    if (const auto it = statements_.find(key); it != statements_.end()) return it->second;
    if (statements_.size() >= kMaxPreparedStatements) {
      Result cleared(pq::PQexec(conn_, "DEALLOCATE ALL"));
      if (cleared == nullptr || pq::PQresultStatus(cleared.get()) != PGRES_COMMAND_OK) {
        throw query_error(cleared.get(), {});
      }
      statements_.clear();
    }
    std::string name = fmt::format("credentials_skill_{}", next_statement_++);
    Result result(pq::PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(types.size()),
                                types.data()));
    if (result == nullptr || pq::PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
      // A statement PREPARE does not take is a syntax error for it (42601):
      // remembered, so it is not offered again. Other failures (a missing
      // table) may pass later: not remembered.
      const char* state = result ? pq::PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
      if (state && std::string_view(state) == "42601") {
        return statements_.emplace(std::move(key), std::string()).first->second;
      }
      unprepared_.clear();
      return unprepared_;
    }
    return statements_.emplace(std::move(key), std::move(name)).first->second;
  }

  // 0A000 is "feature not supported" in general; only this error says the
  // kept plan went stale. Its message is translated by a server whose
  // lc_messages is not English; the server function that raises it is not.
  static bool is_stale_plan(const PGresult* result) {
    const char* function = pq::PQresultErrorField(result, PG_DIAG_SOURCE_FUNCTION);
    if (function != nullptr && std::string_view(function) == "RevalidateCachedQuery") return true;
    const char* message = pq::PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    return message != nullptr && std::string_view(message).starts_with("cached plan must not change result type");
  }

  static std::string sqlstate_of(const PGresult* result) {
    const char* state = pq::PQresultErrorField(result, PG_DIAG_SQLSTATE);
    return state != nullptr ? state : "";
  }

  // Drops the kept statement for `sql` (DEALLOCATE on the server). True when
  // there was one and it is gone.
  bool forget_prepared(const std::string& sql, const std::vector<Oid>& types) {
    const auto it = statements_.find(statement_key(sql, types));
    if (it == statements_.end() || it->second.empty()) return false;
    // The name is ours ("credentials_skill_<n>"): nothing from outside.
    Result dropped(pq::PQexec(conn_, fmt::format("DEALLOCATE {}", it->second).c_str()));
    statements_.erase(it);
    return dropped != nullptr && pq::PQresultStatus(dropped.get()) == PGRES_COMMAND_OK;
  }

  static std::string statement_key(const std::string& sql, const std::vector<Oid>& types) {
    std::string key = sql;
    key.push_back('\0');
    for (const Oid type : types) key += fmt::format("{},", type);
    return key;
  }

  void set_statement_timeout(std::optional<std::chrono::milliseconds> timeout) {
    const std::int64_t wanted = timeout ? std::max<std::int64_t>(timeout->count(), 1) : 0;
    if (wanted == statement_timeout_ms_) return;
    // A formatted integer: nothing from outside reaches this SQL text.
    Result result(pq::PQexec(conn_, fmt::format("SET statement_timeout = {}", wanted).c_str()));
    if (result == nullptr || pq::PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
      throw query_error(result.get(), {});
    }
    statement_timeout_ms_ = wanted;
  }

  // Only the primary message and the SQLSTATE: the DETAIL field of many
  // errors quotes row values ("Failing row contains (...)").
  DatabaseError query_error(const PGresult* result, const std::vector<Param>& params) {
    std::string message;
    std::string sqlstate;
    if (result != nullptr) {
      message = trimmed(pq::PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY));
      sqlstate = trimmed(pq::PQresultErrorField(result, PG_DIAG_SQLSTATE));
    }
    if (message.empty()) message = trimmed(pq::PQerrorMessage(conn_));
    if (sqlstate == "57014") message += " (the skill's timeout)";
    message = scrub_inputs(std::move(message), params);
    return DatabaseError(sqlstate.empty()
                             ? fmt::format("PostgreSQL: {}", message)
                             : fmt::format("PostgreSQL: {} (SQLSTATE {})", message, sqlstate));
  }

  PGconn* conn_;
  std::int64_t statement_timeout_ms_ = 0;  // 0: the server default (none)
  static constexpr std::size_t kMaxPreparedStatements = 256;
  std::map<std::string, std::string> statements_;  // sql ‖ NUL ‖ types -> name
  std::uint64_t next_statement_ = 0;
  std::string unprepared_;  // always empty
};

}  // namespace

std::unique_ptr<Connection> connect_postgres(const ConnectionParams& params) {
  // An empty host would let libpq fall back to PGHOST or the local socket
  // (peer authentication as this process's OS user): a user's credential
  // must say where it connects.
  if (params.host.empty()) throw DatabaseError("PostgreSQL: the credential names no host");

  const std::string port = params.port > 0 ? std::to_string(params.port) : "5432";
  const std::string timeout = std::to_string(std::max(params.connect_timeout_seconds, 0));
  std::vector<const char*> keys;
  std::vector<const char*> values;
  auto add = [&](const char* key, const char* value) {
    keys.push_back(key);
    values.push_back(value);
  };
  // WARNING: libpq ignores empty values and then reads its environment
  // (PGPASSWORD, PGUSER, PGDATABASE, ~/.pgpass). Only passfile can be pinned
  // here; processes that run skills should not export PG* variables.
  add("host", params.host.c_str());
  add("port", port.c_str());
  add("dbname", params.database.c_str());
  add("user", params.username.c_str());
  // A NUL-terminated copy that is wiped when this function returns.
  SecretString password = params.password.clone();
  password.append(std::string_view("\0", 1));
  add("password", password.reveal().data());
  add("passfile", "/dev/null");
  if (!params.ssl_mode.empty()) add("sslmode", params.ssl_mode.c_str());
  if (params.connect_timeout_seconds > 0) add("connect_timeout", timeout.c_str());
  add("application_name", "credentials");
  add("client_encoding", "UTF8");
  // ISO dates, so timestamps convert to ISO-8601 whatever the server's setting.
  add("options", "-c DateStyle=ISO,MDY");
  keys.push_back(nullptr);
  values.push_back(nullptr);

  PGconn* conn = pq::PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/0);
  if (conn == nullptr) throw DatabaseError("PostgreSQL: out of memory while connecting");
  if (pq::PQstatus(conn) != CONNECTION_OK) {
    // libpq's text never holds the password, so nothing in it is masked: a
    // mask would depend on the password and show where it matches (a
    // password "localhost" masking the host). Its lines (one per address
    // tried, and hints) joined into one.
    std::string message = one_line(trimmed(pq::PQerrorMessage(conn)));
    pq::PQfinish(conn);
    throw DatabaseError(fmt::format("PostgreSQL: cannot connect to {}:{} as {}: {}", params.host,
                                    port, params.username, message));
  }
  pq::PQsetNoticeProcessor(conn, &ignore_notice, nullptr);
  return std::make_unique<PostgresConnection>(conn);
}

}  // namespace credentials::internal
