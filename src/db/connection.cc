// Connection parameters from credentials and from DATABASE_URL, and the
// scrubbing of input values from messages. The drivers live in sqlite_connection.cc and
// postgres_connection.cc.
#include "db/connection.h"

#include <charconv>
#include <string>

#include <fmt/format.h>

#include "credentials/errors.h"

namespace credentials::internal {

std::unique_ptr<Connection> connect_sqlite(const ConnectionParams& params);
std::unique_ptr<Connection> connect_postgres(const ConnectionParams& params);

std::string_view db_kind_name(DbKind kind) {
  return kind == DbKind::kSqlite ? "sqlite" : "postgres";
}

ConnectionParams ConnectionParams::clone() const {
  ConnectionParams copy;
  copy.kind = kind;
  copy.host = host;
  copy.port = port;
  copy.database = database;
  copy.username = username;
  copy.password = password.clone();
  copy.ssl_mode = ssl_mode;
  copy.connect_timeout_seconds = connect_timeout_seconds;
  return copy;
}

namespace {

std::optional<DbKind> kind_of(std::string_view db_type) {
  if (db_type == "sqlite" || db_type == "sqlite3") return DbKind::kSqlite;
  if (db_type == "postgres" || db_type == "postgresql") return DbKind::kPostgres;
  return std::nullopt;
}

[[noreturn]] void unsupported(std::string_view db_type) {
  if (db_type == "mysql" || db_type == "mongodb" || db_type == "redis") {
    throw InvalidArgumentError(fmt::format(
        "this build cannot connect to {} databases yet (supported: postgres, sqlite)", db_type));
  }
  throw InvalidArgumentError(
      fmt::format("unknown database type '{}' (supported: postgres, sqlite)", db_type));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a URL component into `out` (which may be a SecretString).
template <typename Out>
void percent_decode(std::string_view text, Out& out) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
        hex_value(text[i + 2]) >= 0) {
      c = static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else if (c == '%') {
      throw InvalidArgumentError("DATABASE_URL has a malformed percent-escape");
    }
    out.append(std::string_view(&c, 1));
  }
}

std::string decoded(std::string_view text) {
  std::string out;
  percent_decode(text, out);
  return out;
}

int parse_port(std::string_view text) {
  int port = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || end != text.data() + text.size() || port <= 0 || port > 65535) {
    throw InvalidArgumentError("DATABASE_URL has an invalid port");
  }
  return port;
}

}  // namespace

ConnectionParams connection_params(const Credential& credential,
                                   const ConnectionOverrides& overrides) {
  const auto kind = kind_of(credential.db_type);
  if (!kind) unsupported(credential.db_type);
  ConnectionParams params;
  params.kind = *kind;
  params.host = overrides.host ? *overrides.host : credential.host;
  params.port = overrides.port ? *overrides.port : credential.port;
  params.database = overrides.database ? *overrides.database : credential.database;
  params.username = credential.username;
  params.password = credential.password.clone();
  params.ssl_mode = credential.ssl_mode;
  params.connect_timeout_seconds = credential.connection_timeout;
  return params;
}

ConnectionParams parse_database_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    throw InvalidArgumentError("DATABASE_URL is not a URL of the form scheme://...");
  }
  const std::string_view scheme = url.substr(0, scheme_end);
  std::string_view rest = url.substr(scheme_end + 3);
  ConnectionParams params;

  if (scheme == "sqlite" || scheme == "sqlite3") {
    // sqlite:///relative.db, sqlite:////absolute/path.db (SQLAlchemy's form).
    if (rest.empty() || rest.front() != '/') {
      throw InvalidArgumentError("DATABASE_URL for sqlite must look like sqlite:///path");
    }
    params.kind = DbKind::kSqlite;
    params.database = decoded(rest.substr(1));
    if (params.database.empty()) {
      throw InvalidArgumentError("DATABASE_URL for sqlite names no database file");
    }
    return params;
  }
  if (scheme != "postgres" && scheme != "postgresql") {
    const auto kind = kind_of(scheme);
    if (!kind) unsupported(scheme);
  }
  params.kind = DbKind::kPostgres;

  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view authority = rest;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    params.database = decoded(rest.substr(slash + 1));
  }
  // The password may contain '@' only percent-encoded, but be lenient: the
  // last '@' separates the user info from the host.
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      params.username = decoded(userinfo.substr(0, colon));
      percent_decode(userinfo.substr(colon + 1), params.password);
    } else {
      params.username = decoded(userinfo);
    }
  }
  if (!authority.empty() && authority.front() == '[') {  // IPv6 literal
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      throw InvalidArgumentError("DATABASE_URL has an unterminated IPv6 host");
    }
    params.host = std::string(authority.substr(1, close - 1));
    authority = authority.substr(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') throw InvalidArgumentError("DATABASE_URL has a malformed host");
      params.port = parse_port(authority.substr(1));
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    params.host = decoded(authority.substr(0, colon));
    params.port = parse_port(authority.substr(colon + 1));
  } else {
    params.host = decoded(authority);
  }
  if (params.port == 0) params.port = 5432;

  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    const std::string key = decoded(pair.substr(0, eq));
    const std::string value = eq == std::string_view::npos ? "" : decoded(pair.substr(eq + 1));
    if (key == "sslmode") {
      params.ssl_mode = value;
    } else if (key == "connect_timeout") {
      int seconds = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
      if (ec != std::errc() || end != value.data() + value.size() || seconds < 0) {
        throw InvalidArgumentError("DATABASE_URL has an invalid connect_timeout");
      }
      params.connect_timeout_seconds = seconds;
    }
    // Other parameters (application_name, ...) are not needed to connect.
  }
  return params;
}

namespace {

void replace_all(std::string& message, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (std::size_t at = message.find(from); at != std::string::npos;
       at = message.find(from, at + to.size())) {
    message.replace(at, from.size(), to);
  }
}

}  // namespace

std::string scrub_inputs(std::string message, const std::vector<Param>& params) {
  for (const Param& param : params) {
    std::string text;
    if (const auto* s = std::get_if<std::string>(&param))
      text = *s;
    else if (const auto* i = std::get_if<std::int64_t>(&param))
      text = fmt::format("{}", *i);
    else if (const auto* d = std::get_if<double>(&param))
      text = fmt::format("{}", *d);
    if (text.empty()) continue;
    replace_all(message, fmt::format("\"{}\"", text), "\"***\"");
    replace_all(message, fmt::format("'{}'", text), "'***'");
    if (text.size() >= 4) replace_all(message, text, "***");
  }
  return message;
}

std::unique_ptr<Connection> connect(const ConnectionParams& params) {
  switch (params.kind) {
    case DbKind::kSqlite:
      return connect_sqlite(params);
    case DbKind::kPostgres:
      return connect_postgres(params);
  }
  throw InvalidArgumentError("unknown database kind");
}

}  // namespace credentials::internal
