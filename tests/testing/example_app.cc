#include "testing/example_app.h"

#include <cstdio>
#include <cstdlib>

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

}  // namespace bgm::testing
