// ConnectionPool: idle database connections, kept per (owner, credential id,
// credential version, target), so that executions reuse connections and a
// rotated password takes effect at the next execution.
//
// Thread-safe. The pool owns idle connections; a Lease owns a connection
// while one execution uses it and gives it back when destroyed (unless the
// connection became unhealthy or its credential version was retired).
// REQUIRES: the pool outlives its leases.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "db/connection.h"

namespace credentials::internal {

struct PoolKey {
  std::string owner;
  std::string credential_id;
  std::uint64_t version = 0;
  // What the connection reaches beyond the credential itself (db_config.json
  // host/port/database overrides), so differently-targeted skills never share.
  std::string target;

  auto operator<=>(const PoolKey&) const = default;
};

class ConnectionPool {
 public:
  explicit ConnectionPool(std::size_t max_idle_per_key) : max_idle_(max_idle_per_key) {}
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;
  ~ConnectionPool();

  class Lease {
   public:
    Lease(ConnectionPool* pool, PoolKey key, std::unique_ptr<Connection> connection)
        : pool_(pool), key_(std::move(key)), connection_(std::move(connection)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) noexcept = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    Connection& operator*() const { return *connection_; }
    Connection* operator->() const { return connection_.get(); }
    // The connection will be closed instead of returned.
    void discard() { discard_ = true; }

   private:
    ConnectionPool* pool_;
    PoolKey key_;
    std::unique_ptr<Connection> connection_;
    bool discard_ = false;
  };

  // An idle connection for `key`, if there is one.
  [[nodiscard]] std::optional<Lease> try_acquire(const PoolKey& key);
  // Wraps a new connection made by the caller for `key`.
  [[nodiscard]] Lease adopt(const PoolKey& key, std::unique_ptr<Connection> connection);

  // Notes that `version` is current for (owner, credential_id): idle
  // connections of older versions are closed now, leased ones when returned.
  void retire_older(std::string_view owner, std::string_view credential_id, std::uint64_t version);

  // Idle connections held (for tests and diagnostics).
  [[nodiscard]] std::size_t idle_count() const;
  [[nodiscard]] std::size_t idle_count(std::string_view owner, std::string_view credential_id,
                                       std::uint64_t version) const;

 private:
  void release(const PoolKey& key, std::unique_ptr<Connection> connection);

  const std::size_t max_idle_;
  mutable std::mutex mutex_;
  std::map<PoolKey, std::vector<std::unique_ptr<Connection>>> idle_;
  // Newest version seen per (owner, credential id).
  std::map<std::pair<std::string, std::string>, std::uint64_t, std::less<>> newest_;
};

}  // namespace credentials::internal
