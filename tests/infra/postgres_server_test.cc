// Proves the PostgreSQL test harness (tests/support/postgres.h) talks to a
// real server: roles it creates can log in with awkward passwords, wrong
// passwords are refused, and server errors reach the caller.
#include <memory>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "support/postgres.h"

namespace credentials::testing {
namespace {

using ConnPtr = std::unique_ptr<PGconn, decltype(&PQfinish)>;

ConnPtr connect_as(const std::string& user, const std::string& password,
                   const std::string& database) {
  PostgresServer& server = PostgresServer::instance();
  const std::string host = server.host();
  const std::string port = std::to_string(server.port());
  const char* keys[] = {"host", "port", "user", "password", "dbname", "connect_timeout", nullptr};
  const char* values[] = {host.c_str(),     port.c_str(), user.c_str(), password.c_str(),
                          database.c_str(), "10",         nullptr};
  return ConnPtr(PQconnectdbParams(keys, values, 0), &PQfinish);
}

std::string single_value(PGconn* conn, const char* sql) {
  PGresult* result = PQexec(conn, sql);
  EXPECT_EQ(PQresultStatus(result), PGRES_TUPLES_OK) << PQresultErrorMessage(result);
  std::string value = PQntuples(result) > 0 ? PQgetvalue(result, 0, 0) : "";
  PQclear(result);
  return value;
}

TEST(PostgresServerTest, ReadsTheEnvironmentOfPgVirtualenv) {
  ASSERT_TRUE(PostgresServer::available()) << PostgresServer::kNotConfigured;
  PostgresServer& server = PostgresServer::instance();
  EXPECT_FALSE(server.host().empty());
  EXPECT_GT(server.port(), 0);
  EXPECT_EQ(server.query_value("SELECT 40 + 2"), "42");
}

TEST(PostgresServerTest, CreatedRoleLogsInWithAwkwardPassword) {
  PostgresServer& server = PostgresServer::instance();
  const std::string password = "p@ss:/w#rd%'\"\\ é";
  server.create_role("harness_user", password);
  server.create_database("harness_db", "harness_user");

  ConnPtr conn = connect_as("harness_user", password, "harness_db");
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  EXPECT_EQ(single_value(conn.get(), "SELECT current_user"), "harness_user");
  EXPECT_EQ(single_value(conn.get(), "SELECT current_database()"), "harness_db");
}

TEST(PostgresServerTest, WrongPasswordIsRefused) {
  PostgresServer& server = PostgresServer::instance();
  server.create_role("harness_refused", "right-password");
  ConnPtr conn = connect_as("harness_refused", "wrong-password", server.superuser_database());
  EXPECT_NE(PQstatus(conn.get()), CONNECTION_OK);
}

TEST(PostgresServerTest, CreateRoleReplacesAnExistingRoleAndItsDatabases) {
  PostgresServer& server = PostgresServer::instance();
  server.create_role("harness_again", "first");
  server.create_database("harness_again_db", "harness_again");
  server.create_role("harness_again", "second");  // drops the role and its database
  EXPECT_EQ(server.query_value("SELECT count(*) FROM pg_database WHERE datname = "
                               "'harness_again_db'"),
            "0");
  ConnPtr old_password = connect_as("harness_again", "first", server.superuser_database());
  EXPECT_NE(PQstatus(old_password.get()), CONNECTION_OK);
  ConnPtr new_password = connect_as("harness_again", "second", server.superuser_database());
  EXPECT_EQ(PQstatus(new_password.get()), CONNECTION_OK) << PQerrorMessage(new_password.get());
}

TEST(PostgresServerTest, ExecuteThrowsTheServerMessage) {
  PostgresServer& server = PostgresServer::instance();
  try {
    server.execute("SELECT * FROM no_such_table_here");
    FAIL() << "execute did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_table_here"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace credentials::testing
