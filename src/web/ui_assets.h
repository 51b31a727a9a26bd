// The web UI's static files (src/web/ui/), compiled into the binary by embed_files() in
// CMakeLists.txt, so the server needs no files beside it. Immutable; thread-safe.
//
//   const EmbeddedFile* file = FindUiFile("app.js");
#pragma once

#include <string_view>
#include <vector>

#include "common/embedded_file.h"

namespace bgm {

// The files of src/web/ui, sorted by name (defined in the generated web_ui_files.cc).
const std::vector<EmbeddedFile>& WebUiFiles();

// The file named `name` (no folders), or nullptr.
const EmbeddedFile* FindUiFile(std::string_view name);

// "text/html; charset=utf-8" for .html, and so on for .js, .css, .svg, .json;
// "application/octet-stream" for anything else.
std::string_view UiContentType(std::string_view name);

}  // namespace bgm
