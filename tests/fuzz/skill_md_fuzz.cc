// Fuzzes the skill.md front-matter parser (internal::parse_skill): every
// malformed file is reported through SkillProblem (file, line, message),
// nothing else escapes.
#include "credentials/errors.h"
#include "fuzz/fuzz_support.h"
#include "skills/skill.h"

using namespace credentials;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = credentials::fuzz::scratch_dir() / "skill.md";
  credentials::fuzz::write_file(file, credentials::fuzz::as_text(data, size));
  SkillProblem problem;
  const auto skill = internal::parse_skill(file, problem);
  if (!skill && problem.message.empty()) std::abort();  // a refusal must say why
  return 0;
}
