// AdminAuth: checks the `Authorization: Bearer <ADMIN_API_KEY>` header that every change through
// the API must carry. Only the key's SHA-256 digest is kept, and digests are compared in
// constant time (CRYPTO_memcmp), so the time a check takes says nothing about the key.
// Immutable after construction; thread-safe.
//
//   AdminAuth auth(config.admin_api_key);
//   if (auth.Check(request.authorization) != AuthOutcome::kAllowed) ...
#pragma once

#include <string>
#include <string_view>

namespace bgm {

enum class AuthOutcome {
  kAllowed,
  kNotConfigured,  // no ADMIN_API_KEY: every change is refused
  kMissing,        // no Authorization header, or not of the form "Bearer <key>"
  kInvalid,        // a bearer key that is not the configured one
};

class AdminAuth {
 public:
  // An empty key means "not configured".
  explicit AdminAuth(std::string_view admin_api_key);

  bool configured() const { return configured_; }
  // `authorization` is the Authorization header's value ("" when absent).
  AuthOutcome Check(std::string_view authorization) const;

 private:
  bool configured_;
  std::string key_digest_;  // hex SHA-256 of the key
};

}  // namespace bgm
