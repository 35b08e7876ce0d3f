// build_connection_string: URLs whose every component is percent-encoded, so a
// password like "p@ss/w:rd#1%]" survives any RFC 3986 parser (the Python
// version concatenated strings and broke on @ / : # %).
#include <fmt/format.h>

#include "credentials/credential.h"
#include "credentials/errors.h"

namespace credentials {
namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Appends `text` percent-encoded; `keep` lists extra characters left as they are.
void append_encoded(SecretString& out, std::string_view text, std::string_view keep = {}) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : text) {
    if (is_unreserved(c) || keep.find(static_cast<char>(c)) != std::string_view::npos) {
      const char plain = static_cast<char>(c);
      out.append(std::string_view(&plain, 1));
    } else {
      const char escaped[3] = {'%', kHex[c >> 4], kHex[c & 15]};
      out.append(std::string_view(escaped, 3));
    }
  }
}

void append_host(SecretString& out, std::string_view host) {
  if (host.find(':') != std::string_view::npos) {  // an IPv6 literal
    out.append("[");
    out.append(host);
    out.append("]");
  } else {
    append_encoded(out, host);
  }
}

}  // namespace

SecretString build_connection_string(const Credential& credential,
                                     const ConnectionOverrides& overrides) {
  const std::string& type = credential.db_type;
  const std::string_view host = overrides.host ? *overrides.host : credential.host;
  const int port = overrides.port ? *overrides.port : credential.port;
  const std::string_view database = overrides.database ? *overrides.database : credential.database;

  SecretString url;
  if (type == "sqlite") {
    // SQLAlchemy's form: sqlite:/// + path, so an absolute path has four slashes.
    url.append("sqlite:///");
    append_encoded(url, database, "/");
    return url;
  }

  const bool tls = credential.ssl_mode == "require" || credential.ssl_mode == "verify-ca" ||
                   credential.ssl_mode == "verify-full";
  if (type == "postgres") url.append("postgresql://");
  else if (type == "mysql") url.append("mysql://");
  else if (type == "mongodb") url.append("mongodb://");
  else if (type == "redis") url.append(tls ? "rediss://" : "redis://");
  else throw InvalidArgumentError("cannot build a connection string for db type '" + type + "'");

  if (!credential.username.empty() || !credential.password.empty()) {
    append_encoded(url, credential.username);
    if (!credential.password.empty()) {
      url.append(":");
      append_encoded(url, credential.password.reveal());
    }
    url.append("@");
  }
  append_host(url, host);
  if (port > 0) url.append(fmt::format(":{}", port));
  url.append("/");
  append_encoded(url, database);

  std::string query;
  auto add = [&query](std::string_view key, std::string_view value) {
    query += query.empty() ? '?' : '&';
    query += key;
    query += '=';
    query += value;
  };
  if (type == "postgres" || type == "mysql") {
    if (!credential.ssl_mode.empty()) add(type == "mysql" ? "ssl-mode" : "sslmode", credential.ssl_mode);
    if (credential.connection_timeout > 0) add("connect_timeout", std::to_string(credential.connection_timeout));
  } else if (type == "mongodb") {
    if (tls) add("tls", "true");
    if (credential.connection_timeout > 0) {
      add("connectTimeoutMS", std::to_string(credential.connection_timeout * 1000));
    }
  }
  url.append(query);
  return url;
}

}  // namespace credentials
