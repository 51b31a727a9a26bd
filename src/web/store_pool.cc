#include "web/store_pool.h"

namespace bgm {

BorrowedStore::BorrowedStore(BorrowedStore&& other) noexcept
    : pool_(other.pool_), store_(std::move(other.store_)), broken_(other.broken_) {
  other.pool_ = nullptr;
}

BorrowedStore::~BorrowedStore() {
  if (pool_ != nullptr && store_ != nullptr && !broken_) pool_->Return(std::move(store_));
}

const Status& BorrowedStore::Check(const Status& s) {
  if (s.code() == StatusCode::kUnavailable) broken_ = true;
  return s;
}

StorePool::StorePool(ControlStoreFactory factory, size_t max_idle)
    : factory_(std::move(factory)), max_idle_(max_idle) {}

Result<BorrowedStore> StorePool::Borrow() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<ControlStore> store = std::move(idle_.back());
      idle_.pop_back();
      return BorrowedStore(this, std::move(store));
    }
  }
  // Opened outside the lock: connecting may take a while.
  Result<std::unique_ptr<ControlStore>> store = factory_();
  if (!store.ok()) return store.status();
  return BorrowedStore(this, std::move(*store));
}

size_t StorePool::idle() const {
  std::lock_guard lock(mu_);
  return idle_.size();
}

void StorePool::Return(std::unique_ptr<ControlStore> store) {
  std::lock_guard lock(mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(store));
}

}  // namespace bgm
