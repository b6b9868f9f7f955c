// simdjson On-Demand harness for the core benchmark.
//
// Usage: simdjson_harness CORPUS BUCKET_SPAN_MS LATENCY_S TIME_FIELD METRIC_FIELD STRING_FIELD_1 STRING_FIELD_2
//
// Loads CORPUS (NDJSON) into a padded buffer, then times one pass of iterate_many over it doing the
// accounting of post-data.md §1-§3, like bench/core/baselines.py: count the leaf fields of every
// record (nested objects walked recursively, an array counts 1, a null counts nothing), the missing
// required fields, epoch-ms time parsing (number or numeric string, truncated to whole ms), the
// out-of-order rule, and for processed records the metric as a double and the two strings as
// string_views (feeding a checksum). Prints one JSON line: counters, checksum, seconds, bytes/s.
//
// Stage 1 (structural indexing) runs in libsimdjson's kernel picked at run time (e.g. icelake);
// the On-Demand front end is compiled into this file for the target of the compiler flags
// (SIMDJSON_BUILTIN_IMPLEMENTATION: "fallback" for plain x86-64). Both are reported. Built without
// -pthread, iterate_many uses no stage-1 thread.
#include <simdjson.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string_view>

using namespace simdjson;

namespace {

constexpr size_t BATCH_SIZE = 1000000;

uint64_t leaves(ondemand::object obj) {
  uint64_t n = 0;
  for (ondemand::field field : obj) {
    ondemand::value v = field.value();
    switch (v.type()) {
      case ondemand::json_type::null: break;
      case ondemand::json_type::object: n += leaves(v.get_object()); break;
      default: n += 1;
    }
  }
  return n;
}

// Java-like double parse of a string (surrounding whitespace allowed), truncated to ms.
bool parse_ms_text(std::string_view s, int64_t &ms) {
  while (!s.empty() && static_cast<unsigned char>(s.front()) <= ' ') s.remove_prefix(1);
  while (!s.empty() && static_cast<unsigned char>(s.back()) <= ' ') s.remove_suffix(1);
  double d;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc() || end != s.data() + s.size() || !(std::fabs(d) < 9.2e18)) return false;
  ms = static_cast<int64_t>(d);
  return true;
}

bool parse_ms(ondemand::value v, ondemand::json_type type, int64_t &ms) {
  if (type == ondemand::json_type::string) return parse_ms_text(v.get_string(), ms);
  if (type != ondemand::json_type::number) return false;
  ondemand::number num = v.get_number();
  if (num.is_int64()) {
    ms = num.get_int64();
    return true;
  }
  double d = num.as_double();
  if (!(std::fabs(d) < 9.2e18)) return false;
  ms = static_cast<int64_t>(d);
  return true;
}

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s CORPUS BUCKET_SPAN_MS LATENCY_S TIME METRIC STRING1 STRING2\n", argv[0]);
    return 2;
  }
  const int64_t span_ms = std::atoll(argv[2]);
  const int64_t latency_s = std::atoll(argv[3]);
  const std::string_view time_field = argv[4], metric_field = argv[5], str1_field = argv[6], str2_field = argv[7];

  padded_string json;
  if (auto error = padded_string::load(argv[1]).get(json)) {
    std::fprintf(stderr, "cannot load %s: %s\n", argv[1], error_message(error));
    return 1;
  }

  uint64_t processed = 0, invalid_date = 0, missing_field = 0, out_of_order = 0, input_fields = 0;
  uint64_t string_bytes = 0, truncated = 0;
  double metric_sum = 0;
  try {
    ondemand::parser parser;
    const auto wall0 = std::chrono::steady_clock::now();
    const double cpu0 = cpu_seconds();
    ondemand::document_stream stream = parser.iterate_many(json, BATCH_SIZE);
    int64_t latest = 0;
    int64_t min_second = 0;  // trunc(t / 1000) below this is out of order: bucket start of latest - latency
    for (ondemand::document_reference doc : stream) {
      bool has_time = false, has_metric = false, has_str1 = false, has_str2 = false;
      bool time_ok = false, metric_is_number = false;
      int64_t ms = 0;
      double metric = 0;
      size_t str_len = 0;
      uint64_t n = 0;
      for (ondemand::field field : doc.get_object()) {
        ondemand::value v = field.value();
        const ondemand::json_type type = v.type();
        if (type == ondemand::json_type::null) continue;
        if (type == ondemand::json_type::object) {  // its leaves are "key.x": the key itself stays absent
          n += leaves(v.get_object());
          continue;
        }
        n += 1;
        // raw comparison: a key spelt with escape sequences would not match (none in the corpus)
        const ondemand::raw_json_string key = field.key();
        if (key == time_field) {
          has_time = true;
          time_ok = parse_ms(v, type, ms);
        } else if (key == metric_field) {
          has_metric = true;
          if (type == ondemand::json_type::number) {
            metric = v.get_double();
            metric_is_number = true;
          }
        } else if (key == str1_field) {
          has_str1 = true;
          if (type == ondemand::json_type::string) str_len += std::string_view(v.get_string()).size();
        } else if (key == str2_field) {
          has_str2 = true;
          if (type == ondemand::json_type::string) str_len += std::string_view(v.get_string()).size();
        }
      }
      input_fields += n > 0 ? n - 1 : 0;
      missing_field += !has_time + !has_metric + !has_str1 + !has_str2;
      if (!time_ok) {
        invalid_date++;
      } else if (ms / 1000 < min_second) {
        out_of_order++;
      } else {
        processed++;
        if (ms > latest) {
          latest = ms;
          min_second = latest / span_ms * span_ms / 1000 - latency_s;
        }
        if (metric_is_number) metric_sum += metric;
        string_bytes += str_len;
      }
    }
    truncated = stream.truncated_bytes();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const double cpu = cpu_seconds() - cpu0;
    std::printf(
        "{\"stage1_implementation\":\"%s\",\"ondemand_implementation\":\"" SIMDJSON_STRINGIFY(SIMDJSON_BUILTIN_IMPLEMENTATION) "\",\"simdjson_version\":\"" SIMDJSON_STRINGIFY(SIMDJSON_VERSION) "\","
        "\"bytes\":%zu,\"truncated_bytes\":%llu,\"wall_s\":%.6f,\"cpu_s\":%.6f,\"bytes_per_s\":%.0f,"
        "\"processed\":%llu,\"invalid_date\":%llu,\"missing_field\":%llu,\"out_of_order\":%llu,"
        "\"input_field_count\":%llu,\"metric_sum\":%.17g,\"string_bytes\":%llu}\n",
        get_active_implementation()->name().c_str(),
        json.size(), (unsigned long long)truncated, wall, cpu, json.size() / wall,
        (unsigned long long)processed, (unsigned long long)invalid_date, (unsigned long long)missing_field,
        (unsigned long long)out_of_order, (unsigned long long)input_fields, metric_sum,
        (unsigned long long)string_bytes);
  } catch (const simdjson_error &e) {
    std::fprintf(stderr, "simdjson error: %s\n", e.what());
    return 1;
  }
  return 0;
}
