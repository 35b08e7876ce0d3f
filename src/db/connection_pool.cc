#include "db/connection_pool.h"

#include <utility>

namespace credentials::internal {

ConnectionPool::~ConnectionPool() = default;

ConnectionPool::Lease::~Lease() {
  if (connection_ == nullptr) return;               // moved from
  if (discard_ || !connection_->healthy()) return;  // closed by unique_ptr
  pool_->release(key_, std::move(connection_));
}

std::optional<ConnectionPool::Lease> ConnectionPool::try_acquire(const PoolKey& key) {
  std::vector<std::unique_ptr<Connection>> closing;  // closed after the lock is released
  std::lock_guard lock(mutex_);
  auto it = idle_.find(key);
  while (it != idle_.end() && !it->second.empty()) {
    std::unique_ptr<Connection> connection = std::move(it->second.back());
    it->second.pop_back();
    if (connection->reusable()) return Lease(this, key, std::move(connection));
    closing.push_back(std::move(connection));
  }
  return std::nullopt;
}

ConnectionPool::Lease ConnectionPool::adopt(const PoolKey& key,
                                            std::unique_ptr<Connection> connection) {
  return Lease(this, key, std::move(connection));
}

void ConnectionPool::retire_older(std::string_view owner, std::string_view credential_id,
                                  std::uint64_t version) {
  std::vector<std::unique_ptr<Connection>> closing;
  {
    std::lock_guard lock(mutex_);
    auto [newest, inserted] =
        newest_.try_emplace({std::string(owner), std::string(credential_id)}, version);
    if (!inserted) {
      if (newest->second >= version) return;
      newest->second = version;
    }
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (it->first.owner == owner && it->first.credential_id == credential_id &&
          it->first.version < version) {
        for (auto& c : it->second) closing.push_back(std::move(c));
        it = idle_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // `closing` is destroyed here, outside the lock: closing a network
  // connection may take a moment.
}

void ConnectionPool::release(const PoolKey& key, std::unique_ptr<Connection> connection) {
  std::lock_guard lock(mutex_);
  if (auto it = newest_.find(std::pair(key.owner, key.credential_id));
      it != newest_.end() && it->second > key.version) {
    return;  // retired: closed when `connection` goes out of scope
  }
  auto& list = idle_[key];
  if (list.size() >= max_idle_) return;
  list.push_back(std::move(connection));
}

std::size_t ConnectionPool::idle_count() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [key, list] : idle_) n += list.size();
  return n;
}

std::size_t ConnectionPool::idle_count(std::string_view owner, std::string_view credential_id,
                                       std::uint64_t version) const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [key, list] : idle_) {
    if (key.owner == owner && key.credential_id == credential_id && key.version == version) {
      n += list.size();
    }
  }
  return n;
}

}  // namespace credentials::internal
