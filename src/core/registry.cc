#include "core/registry.h"

#include <algorithm>

namespace bgm {

Registry::Registry(std::vector<MigrationSpec> specs) : specs_(std::move(specs)) {
  std::sort(specs_.begin(), specs_.end(),
            [](const MigrationSpec& a, const MigrationSpec& b) { return a.name < b.name; });
}

const MigrationSpec* Registry::Find(const std::string& script) const {
  for (const MigrationSpec& s : specs_) {
    if (s.name == script) return &s;
  }
  return nullptr;
}

std::string Registry::ScriptNames() const {
  std::string out;
  for (const MigrationSpec& s : specs_) {
    if (!out.empty()) out += ", ";
    out += s.name;
  }
  return out;
}

}  // namespace bgm
