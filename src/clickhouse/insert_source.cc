#include "clickhouse/insert_source.h"

#include <algorithm>
#include <cstring>

namespace bgm {

Result<size_t> StringInsertSource::Read(char* buf, size_t capacity) {
  const size_t n = std::min(capacity, data_.size());
  if (n > 0) std::memcpy(buf, data_.data(), n);
  data_.remove_prefix(n);
  return n;
}

Result<size_t> ChunkedInsertSource::Read(char* buf, size_t capacity) {
  if (!error_.ok()) return error_;
  while (offset_ == chunk_.size()) {
    if (done_) return size_t{0};
    chunk_.clear();
    offset_ = 0;
    ++fill_calls_;
    Result<bool> more = fill_(chunk_);
    if (!more.ok()) {
      error_ = more.status();
      return error_;
    }
    done_ = !*more;
    max_chunk_bytes_ = std::max(max_chunk_bytes_, chunk_.size());
  }
  const size_t n = std::min(capacity, chunk_.size() - offset_);
  std::memcpy(buf, chunk_.data() + offset_, n);
  offset_ += n;
  return n;
}

}  // namespace bgm
