//! The genesis a new ledger gets unless told otherwise: Shanghai's sixteen districts,
//! school subjects with arts, sports and technology, the national platform's 15-day
//! confirmation window, allocations valid for 90 days, money in CNY fen.

use super::payload::Genesis;

/// Shanghai's sixteen districts, as pseudonymous-safe ASCII ids.
pub const SHANGHAI_DISTRICTS: [&str; 16] = [
    "huangpu",
    "xuhui",
    "changning",
    "jingan",
    "putuo",
    "hongkou",
    "yangpu",
    "minhang",
    "baoshan",
    "jiading",
    "pudong",
    "jinshan",
    "songjiang",
    "qingpu",
    "fengxian",
    "chongming",
];

/// Subjects of the pool: academic subjects, arts, sports, technology.
pub const SUBJECTS: [&str; 20] = [
    "chinese",
    "math",
    "english",
    "physics",
    "chemistry",
    "biology",
    "history",
    "geography",
    "art",
    "music",
    "piano",
    "dance",
    "calligraphy",
    "chess",
    "swimming",
    "basketball",
    "football",
    "programming",
    "robotics",
    "science",
];

/// The national supervision platform's confirmation window.
pub const CONFIRMATION_WINDOW_DAYS: u64 = 15;

/// How long an allocation stays valid before its remainder returns to the pool.
pub const ALLOCATION_VALIDITY_DAYS: u64 = 90;

/// The default genesis for a ledger with this origin and operator. It declares no
/// association yet: the caller adds at least one (`Genesis::associations`), whose key
/// must co-sign the genesis.
pub fn genesis(origin: &str, operator: &str, operator_key: &str) -> Genesis {
    Genesis {
        id: "genesis".to_string(),
        ledger: origin.to_string(),
        origin: origin.to_string(),
        operator: operator.to_string(),
        operator_key: operator_key.to_string(),
        confirmation_window_days: CONFIRMATION_WINDOW_DAYS,
        allocation_validity_days: ALLOCATION_VALIDITY_DAYS,
        day_micros: super::limits::DAY_MICROS,
        unit: "CNY-fen".to_string(),
        districts: SHANGHAI_DISTRICTS.iter().map(|d| d.to_string()).collect(),
        subjects: SUBJECTS.iter().map(|s| s.to_string()).collect(),
        associations: Vec::new(),
    }
}

/// The genesis as payload bytes (`kind` added).
pub fn genesis_payload(genesis: &Genesis) -> Vec<u8> {
    let mut value = serde_json::to_value(genesis).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("kind".to_string(), "genesis".into());
    }
    serde_json::to_vec(&value).unwrap_or_default()
}
