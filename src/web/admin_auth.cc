#include "web/admin_auth.h"

#include <openssl/crypto.h>

#include "common/sha256.h"

namespace bgm {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

AdminAuth::AdminAuth(std::string_view admin_api_key)
    : configured_(!admin_api_key.empty()),
      key_digest_(configured_ ? Sha256Hex(admin_api_key) : std::string()) {}

AuthOutcome AdminAuth::Check(std::string_view authorization) const {
  if (!configured_) return AuthOutcome::kNotConfigured;
  authorization = Trim(authorization);
  constexpr std::string_view kScheme = "Bearer";
  if (authorization.size() <= kScheme.size() ||
      !EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme) ||
      authorization[kScheme.size()] != ' ') {
    return AuthOutcome::kMissing;
  }
  const std::string_view key = Trim(authorization.substr(kScheme.size() + 1));
  if (key.empty()) return AuthOutcome::kMissing;
  // Equal-length digests, compared without an early exit.
  const std::string digest = Sha256Hex(key);
  return CRYPTO_memcmp(digest.data(), key_digest_.data(), key_digest_.size()) == 0
             ? AuthOutcome::kAllowed
             : AuthOutcome::kInvalid;
}

}  // namespace bgm
