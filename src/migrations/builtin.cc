// The one list of built-in (C++) background migrations: those whose logic SQL cannot express.
// Everything else is a migration file (docs/writing-a-migration.md); the example
// application's migrations are files in examples/langfuse/migrations/. Add a C++ one here;
// names are timestamp-prefixed so name order is run order.
#include "core/registry.h"

namespace bgm {

const Registry& BuiltinRegistry() {
  static const Registry kRegistry(std::vector<MigrationSpec>{});
  return kRegistry;
}

}  // namespace bgm
