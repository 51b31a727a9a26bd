#include "testing/example_app.h"

#include <cstdio>
#include <cstdlib>

#include "migrations/file_registry.h"

namespace bgm::testing {

std::string ExampleSchemaDir() { return BGM_SOURCE_DIR "/examples/langfuse/schema"; }

const ApplicationSchema& ExampleSchema() {
  static const ApplicationSchema kSchema = [] {
    Result<ApplicationSchema> loaded = ApplicationSchema::Load(ExampleSchemaDir());
    if (!loaded.ok()) {
      std::fprintf(stderr, "cannot load the example schema: %s\n",
                   loaded.status().ToString().c_str());
      std::abort();
    }
    return std::move(*loaded);
  }();
  return kSchema;
}

std::string ExampleMigrationsDir() { return BGM_SOURCE_DIR "/examples/langfuse/migrations"; }

const Registry& ExampleRegistry() {
  static const Registry kRegistry = [] {
    Result<Registry> loaded = LoadRegistry({ExampleMigrationsDir()}, BuiltinRegistry());
    if (!loaded.ok()) {
      std::fprintf(stderr, "cannot load the example migrations: %s\n",
                   loaded.status().ToString().c_str());
      std::abort();
    }
    return std::move(*loaded);
  }();
  return kRegistry;
}

}  // namespace bgm::testing
