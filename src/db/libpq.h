// libpq, loaded when PostgreSQL is first used rather than when the program
// starts.
//
// libpq pulls in some twenty shared libraries (Kerberos, LDAP, GnuTLS, SASL,
// ...). Linked normally, every process pays for loading and relocating them
// at start-up — most of the start-up of a `credential_manager list` on the
// embedded vault, which never talks to PostgreSQL. So the library does not
// link libpq: the PostgreSQL code calls it through `pq::` below, which opens
// libpq.so.5 with dlopen(3) at the first call. Only the types come from
// <libpq-fe.h>.
#pragma once

#include <libpq-fe.h>

#include <utility>

namespace credentials::internal::pq {

// Every libpq function the library calls.
#define CREDENTIALS_LIBPQ_FUNCTIONS(X)                                                               \
  X(PQclear) X(PQcmdStatus) X(PQcmdTuples) X(PQconnectdbParams) X(PQconninfoFree)                  \
  X(PQconninfoParse) X(PQdb) X(PQerrorMessage) X(PQexec) X(PQexecParams) X(PQexecPrepared)         \
  X(PQfinish) X(PQfname) X(PQfreemem) X(PQftype) X(PQgetisnull) X(PQgetlength) X(PQgetvalue)       \
  X(PQhost) X(PQnfields) X(PQntuples) X(PQport) X(PQprepare) X(PQreset) X(PQresultErrorField)      \
  X(PQresultErrorMessage) X(PQresultStatus) X(PQsendQueryParams) X(PQsendQueryPrepared)          \
  X(PQsetNoticeProcessor) X(PQsocket) X(PQstatus) X(PQtransactionStatus) X(PQuser) X(PQgetResult)

struct Api {
#define CREDENTIALS_LIBPQ_POINTER(name) decltype(&::name) name = nullptr;
  CREDENTIALS_LIBPQ_FUNCTIONS(CREDENTIALS_LIBPQ_POINTER)
#undef CREDENTIALS_LIBPQ_POINTER
};

// libpq's functions; loads libpq.so.5 at the first call. Thread-safe.
// Throws DatabaseError (saying to install libpq5) when it cannot be loaded.
const Api& api();

#define CREDENTIALS_LIBPQ_FORWARD(name)                       \
  template <typename... Args>                                 \
  inline auto name(Args&&... args) {                          \
    return api().name(std::forward<Args>(args)...);           \
  }
CREDENTIALS_LIBPQ_FUNCTIONS(CREDENTIALS_LIBPQ_FORWARD)
#undef CREDENTIALS_LIBPQ_FORWARD

}  // namespace credentials::internal::pq
