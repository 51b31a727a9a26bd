// SHA-256 of a byte string as 64 lowercase hex digits (OpenSSL). Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace bgm {

std::string Sha256Hex(std::string_view data);

}  // namespace bgm
