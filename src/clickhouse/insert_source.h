// InsertSource: the pull interface an insert body is streamed from, so no batch is ever held as
// one string. The transport calls Read() until it returns 0. A source is used by one thread at a
// time and is consumed once; it owns (or borrows, as documented per class) what it serves.
//
//   ChunkedInsertSource source([&](std::string& chunk) -> Result<bool> {
//     if (!reader.Next(&row)) return false;          // end of rows
//     encoder.Append(row, chunk);                    // a few KiB per call
//     return true;
//   });
//   Status s = client.Insert("INSERT INTO t FORMAT RowBinary", source);
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bgm {

class InsertSource {
 public:
  virtual ~InsertSource() = default;
  // Copies up to `capacity` (> 0) bytes into `buf` and returns how many; 0 means the body is
  // complete. A non-OK Result aborts the request: the server sees a broken body and stores
  // nothing of the unfinished block, and Insert returns this Status.
  virtual Result<size_t> Read(char* buf, size_t capacity) = 0;
};

// Serves a caller-owned byte range; `data` must outlive the source. For small bodies and tests.
class StringInsertSource final : public InsertSource {
 public:
  explicit StringInsertSource(std::string_view data) : data_(data) {}
  Result<size_t> Read(char* buf, size_t capacity) override;

 private:
  std::string_view data_;
};

// Serves bytes produced on demand: `fill` appends the next piece of the body to the (empty)
// string it is given and returns true, or returns false when there is nothing more (it may
// append a last piece in that call too), or an error to abort. Memory is bounded by the largest
// piece one call appends, not by the body.
class ChunkedInsertSource final : public InsertSource {
 public:
  using Fill = std::function<Result<bool>(std::string& chunk)>;
  explicit ChunkedInsertSource(Fill fill) : fill_(std::move(fill)) {}
  Result<size_t> Read(char* buf, size_t capacity) override;

  // Number of times `fill` was called (for tests and metrics).
  size_t fill_calls() const { return fill_calls_; }
  // Largest piece `fill` produced in one call.
  size_t max_chunk_bytes() const { return max_chunk_bytes_; }

 private:
  Fill fill_;
  std::string chunk_;
  size_t offset_ = 0;
  bool done_ = false;
  Status error_;  // sticky: once `fill` failed, every Read returns its Status
  size_t fill_calls_ = 0;
  size_t max_chunk_bytes_ = 0;
};

}  // namespace bgm
