// StorePool: the ControlStores (one database connection each) that the web server's request
// threads share. A request borrows a store for its duration; the store goes back to the pool
// afterwards, unless an operation on it failed with kUnavailable (its connection is presumed
// broken), in which case it is closed and the next request opens a fresh one.
// Thread-safe. The pool must outlive every BorrowedStore.
//
//   Result<BorrowedStore> store = pool.Borrow();
//   if (!store.ok()) return store.status();
//   Result<std::vector<MigrationRow>> rows = store->Check((*store)->List());
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "core/control_store.h"
#include "core/manager.h"  // ControlStoreFactory

namespace bgm {

class StorePool;

// One store on loan from a StorePool; returns it on destruction. Move-only.
class BorrowedStore {
 public:
  BorrowedStore(BorrowedStore&& other) noexcept;
  BorrowedStore& operator=(BorrowedStore&&) = delete;
  BorrowedStore(const BorrowedStore&) = delete;
  BorrowedStore& operator=(const BorrowedStore&) = delete;
  ~BorrowedStore();

  ControlStore& operator*() const { return *store_; }
  ControlStore* operator->() const { return store_.get(); }

  // Passes `s` (or a Result's status) through; a kUnavailable one marks the store broken so it
  // is closed instead of reused.
  const Status& Check(const Status& s);
  template <typename T>
  Result<T> Check(Result<T> r) {
    if (!r.ok()) Check(r.status());
    return r;
  }

 private:
  friend class StorePool;
  BorrowedStore(StorePool* pool, std::unique_ptr<ControlStore> store)
      : pool_(pool), store_(std::move(store)) {}

  StorePool* pool_;
  std::unique_ptr<ControlStore> store_;
  bool broken_ = false;
};

class StorePool {
 public:
  // At most `max_idle` stores are kept open between requests; more may be open while many
  // requests run at once.
  explicit StorePool(ControlStoreFactory factory, size_t max_idle = 4);
  StorePool(const StorePool&) = delete;
  StorePool& operator=(const StorePool&) = delete;

  // An idle store, or a new one from the factory (whose error, e.g. kUnavailable when the
  // database is down, is returned as is).
  Result<BorrowedStore> Borrow();

  size_t idle() const;

 private:
  friend class BorrowedStore;
  void Return(std::unique_ptr<ControlStore> store);

  const ControlStoreFactory factory_;
  const size_t max_idle_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<ControlStore>> idle_;  // guarded by mu_
};

}  // namespace bgm
