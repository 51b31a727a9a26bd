#include "web/ui_assets.h"

namespace bgm {

const EmbeddedFile* FindUiFile(std::string_view name) {
  for (const EmbeddedFile& f : WebUiFiles()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string_view UiContentType(std::string_view name) {
  const auto ends_with = [&](std::string_view suffix) { return name.ends_with(suffix); };
  if (ends_with(".html")) return "text/html; charset=utf-8";
  if (ends_with(".js")) return "text/javascript; charset=utf-8";
  if (ends_with(".css")) return "text/css; charset=utf-8";
  if (ends_with(".svg")) return "image/svg+xml";
  if (ends_with(".json")) return "application/json";
  return "application/octet-stream";
}

}  // namespace bgm
