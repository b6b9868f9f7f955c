//! `DataCounts`: the counters Elasticsearch reports for a job, and their JSON form.
//!
//! Field order, omission rules and the two computed fields (`processed_field_count`,
//! `input_record_count`) follow `post-data.md` §1.3 exactly; the JSON is written by hand because
//! it is on the per-request path of small requests.

use std::fmt::Write;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataCounts {
    pub processed_record_count: u64,
    pub input_bytes: u64,
    pub input_field_count: u64,
    pub invalid_date_count: u64,
    pub missing_field_count: u64,
    pub out_of_order_timestamp_count: u64,
    pub empty_bucket_count: u64,
    pub sparse_bucket_count: u64,
    pub bucket_count: u64,
    pub earliest_record_timestamp: Option<i64>,
    pub latest_record_timestamp: Option<i64>,
    pub last_data_time: Option<i64>,
    pub latest_empty_bucket_timestamp: Option<i64>,
    pub latest_sparse_bucket_timestamp: Option<i64>,
    pub log_time: Option<i64>,
}

impl DataCounts {
    /// `max(0, processed × A − missing)`: computed, not counted (so it inherits the quirks).
    pub fn processed_field_count(&self, analysis_fields: u64) -> u64 {
        (self.processed_record_count * analysis_fields).saturating_sub(self.missing_field_count)
    }

    pub fn input_record_count(&self) -> u64 {
        self.processed_record_count + self.out_of_order_timestamp_count + self.invalid_date_count
    }

    /// Add another object's counters (used to fold a request into the lifetime totals; the
    /// timestamps are kept by the caller).
    pub fn add_counters(&mut self, o: &DataCounts) {
        self.processed_record_count += o.processed_record_count;
        self.input_bytes += o.input_bytes;
        self.input_field_count += o.input_field_count;
        self.invalid_date_count += o.invalid_date_count;
        self.missing_field_count += o.missing_field_count;
        self.out_of_order_timestamp_count += o.out_of_order_timestamp_count;
        self.empty_bucket_count += o.empty_bucket_count;
        self.sparse_bucket_count += o.sparse_bucket_count;
        self.bucket_count += o.bucket_count;
    }

    /// The Elasticsearch JSON document, fields in `DataCounts.doXContentBody` order.
    pub fn to_json(&self, job_id: &str, analysis_fields: u64) -> String {
        let mut s = String::with_capacity(480);
        self.write_json(&mut s, job_id, analysis_fields);
        s
    }

    /// [`Self::to_json`] appended to `s` (which a caller may reuse: every small request
    /// answers with one). Written by hand and unrolled: each name, with its quotes, comma and
    /// colon, is one literal, so its copy is a few inlined moves; most counters are single
    /// digits and skip `itoa`. (`write!` cost more than scanning a small body; a loop over a
    /// table of names cost three times this, in `memcpy` calls and capacity checks.)
    pub fn write_json(&self, s: &mut String, job_id: &str, analysis_fields: u64) {
        s.reserve(480);
        s.push_str("{\"job_id\":");
        push_json_string(s, job_id);
        push_u64(s, ",\"processed_record_count\":", self.processed_record_count);
        push_u64(s, ",\"processed_field_count\":", self.processed_field_count(analysis_fields));
        push_u64(s, ",\"input_bytes\":", self.input_bytes);
        push_u64(s, ",\"input_field_count\":", self.input_field_count);
        push_u64(s, ",\"invalid_date_count\":", self.invalid_date_count);
        push_u64(s, ",\"missing_field_count\":", self.missing_field_count);
        push_u64(s, ",\"out_of_order_timestamp_count\":", self.out_of_order_timestamp_count);
        push_u64(s, ",\"empty_bucket_count\":", self.empty_bucket_count);
        push_u64(s, ",\"sparse_bucket_count\":", self.sparse_bucket_count);
        push_u64(s, ",\"bucket_count\":", self.bucket_count);
        push_date(s, ",\"earliest_record_timestamp\":", self.earliest_record_timestamp);
        push_date(s, ",\"latest_record_timestamp\":", self.latest_record_timestamp);
        push_date(s, ",\"last_data_time\":", self.last_data_time);
        push_date(s, ",\"latest_empty_bucket_timestamp\":", self.latest_empty_bucket_timestamp);
        push_date(s, ",\"latest_sparse_bucket_timestamp\":", self.latest_sparse_bucket_timestamp);
        push_u64(s, ",\"input_record_count\":", self.input_record_count());
        push_date(s, ",\"log_time\":", self.log_time);
        s.push('}');
    }

    /// Read a document written by [`Self::to_json`] (the persisted lifetime totals).
    pub fn from_json(text: &str) -> Result<DataCounts, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let t = |k: &str| v.get(k).and_then(|x| x.as_i64());
        Ok(DataCounts {
            processed_record_count: n("processed_record_count"),
            input_bytes: n("input_bytes"),
            input_field_count: n("input_field_count"),
            invalid_date_count: n("invalid_date_count"),
            missing_field_count: n("missing_field_count"),
            out_of_order_timestamp_count: n("out_of_order_timestamp_count"),
            empty_bucket_count: n("empty_bucket_count"),
            sparse_bucket_count: n("sparse_bucket_count"),
            bucket_count: n("bucket_count"),
            earliest_record_timestamp: t("earliest_record_timestamp"),
            latest_record_timestamp: t("latest_record_timestamp"),
            last_data_time: t("last_data_time"),
            latest_empty_bucket_timestamp: t("latest_empty_bucket_timestamp"),
            latest_sparse_bucket_timestamp: t("latest_sparse_bucket_timestamp"),
            log_time: t("log_time"),
        })
    }
}

/// `key` (a literal: `,"name":`) and the counter `v`. Inlined so that the key's copy has a
/// constant length.
#[inline(always)]
fn push_u64(s: &mut String, key: &str, v: u64) {
    s.push_str(key);
    if v < 10 {
        s.push(char::from(b'0' + v as u8));
    } else {
        s.push_str(itoa::Buffer::new().format(v));
    }
}

/// `key` and the time `v` (ms), if there is one.
#[inline(always)]
fn push_date(s: &mut String, key: &str, v: Option<i64>) {
    if let Some(v) = v {
        s.push_str(key);
        s.push_str(itoa::Buffer::new().format(v));
    }
}

/// Append `v` as a JSON string literal.
pub fn push_json_string(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_order_and_omissions() {
        let c = DataCounts {
            processed_record_count: 2,
            input_bytes: 177,
            input_field_count: 6,
            earliest_record_timestamp: Some(1403481600000),
            latest_record_timestamp: Some(1403481700000),
            last_data_time: Some(5),
            ..Default::default()
        };
        assert_eq!(
            c.to_json("j", 2),
            "{\"job_id\":\"j\",\"processed_record_count\":2,\"processed_field_count\":4,\"input_bytes\":177,\
             \"input_field_count\":6,\"invalid_date_count\":0,\"missing_field_count\":0,\
             \"out_of_order_timestamp_count\":0,\"empty_bucket_count\":0,\"sparse_bucket_count\":0,\
             \"bucket_count\":0,\"earliest_record_timestamp\":1403481600000,\
             \"latest_record_timestamp\":1403481700000,\"last_data_time\":5,\"input_record_count\":2}"
        );
        assert_eq!(DataCounts::from_json(&c.to_json("j", 2)).unwrap(), c);
    }

    #[test]
    fn processed_field_count_never_goes_negative() {
        let c = DataCounts { processed_record_count: 4, missing_field_count: 3, ..Default::default() };
        assert_eq!(c.processed_field_count(1), 1);
        let c = DataCounts { processed_record_count: 1, missing_field_count: 3, ..Default::default() };
        assert_eq!(c.processed_field_count(1), 0);
    }
}
