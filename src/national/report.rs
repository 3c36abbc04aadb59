//! The national view's report: each city's figures (or its error code) and the national
//! totals of the cities verified, as JSON (`--json`, `schemas/README.md`) or a plain
//! table. Money in fen, as the ledger keeps it.

use serde::Serialize;

use super::{CityReport, Verified};

/// The pool's side: what was pledged and where it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PoolFigures {
    pub pledged: u64,
    pub available: u64,
    pub reserved: u64,
    pub delivered: u64,
}

/// The claims' side: what is owed to families and where it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClaimFigures {
    pub count: u64,
    pub value: u64,
    pub unreserved: u64,
    pub reserved: u64,
    pub consumed: u64,
}

/// Coverage of the claims' value: by lessons reserved or consumed (`secured`), and by
/// what was pledged (`pledged`); `None` when there is no claim.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Coverage {
    pub secured: Option<f64>,
    pub pledged: Option<f64>,
}

/// A city's figures, or the nation's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Figures {
    /// Entries: the checkpoint's tree size (the sum of the cities' for the nation).
    pub size: u64,
    pub pool: PoolFigures,
    pub claims: ClaimFigures,
    pub coverage: Coverage,
}

/// The totals do not fit in 64 bits.
#[derive(Debug, thiserror::Error)]
#[error("the national total of {what} does not fit in 64 bits")]
pub struct TotalOverflow {
    pub what: &'static str,
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Figures {
    /// The figures of a verified city.
    pub fn of(city: &Verified) -> Figures {
        let p = &city.pool;
        Figures::new(
            city.size,
            PoolFigures {
                pledged: p.pledged.0,
                available: p.available.0,
                reserved: p.reserved.0,
                delivered: p.delivered.0,
            },
            ClaimFigures {
                count: p.claims,
                value: p.claims_value.0,
                unreserved: p.claims_unreserved.0,
                reserved: p.claims_reserved.0,
                consumed: p.claims_consumed.0,
            },
        )
    }

    fn new(size: u64, pool: PoolFigures, claims: ClaimFigures) -> Figures {
        let secured = claims.reserved.checked_add(claims.consumed);
        Figures {
            size,
            pool,
            claims,
            coverage: Coverage {
                // Reserved and consumed are parts of the value: their sum fits.
                secured: secured.and_then(|s| ratio(s, claims.value)),
                pledged: ratio(pool.pledged, claims.value),
            },
        }
    }

    /// The sum of `cities`' figures.
    ///
    /// # Errors
    /// [`TotalOverflow`] naming the first figure whose sum does not fit.
    pub fn total<'a>(cities: impl Iterator<Item = &'a Figures>) -> Result<Figures, TotalOverflow> {
        let add = |a: u64, b: u64, what| a.checked_add(b).ok_or(TotalOverflow { what });
        let (mut size, mut pool, mut claims) = (0, PoolFigures::default(), ClaimFigures::default());
        for c in cities {
            size = add(size, c.size, "entries")?;
            pool.pledged = add(pool.pledged, c.pool.pledged, "pledged")?;
            pool.available = add(pool.available, c.pool.available, "available")?;
            pool.reserved = add(pool.reserved, c.pool.reserved, "reserved")?;
            pool.delivered = add(pool.delivered, c.pool.delivered, "delivered")?;
            claims.count = add(claims.count, c.claims.count, "claims")?;
            claims.value = add(claims.value, c.claims.value, "claims value")?;
            claims.unreserved = add(claims.unreserved, c.claims.unreserved, "unreserved")?;
            claims.reserved = add(claims.reserved, c.claims.reserved, "claims reserved")?;
            claims.consumed = add(claims.consumed, c.claims.consumed, "consumed")?;
        }
        Ok(Figures::new(size, pool, claims))
    }
}

/// A city failed: its error code and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
}

/// One city's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CityLine {
    pub name: String,
    pub url: String,
    /// Whether every figure was proven; `false`: see `error`, the city is not in the totals.
    pub verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figures: Option<Figures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

/// The national totals, of the verified cities only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct National {
    pub cities_verified: u64,
    pub cities_failed: u64,
    pub figures: Figures,
}

/// The whole report (the `--json` document).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NationalReport {
    pub cities: Vec<CityLine>,
    pub national: National,
}

impl NationalReport {
    /// The report of a survey.
    ///
    /// # Errors
    /// [`TotalOverflow`].
    pub fn new(surveyed: &[CityReport]) -> Result<NationalReport, TotalOverflow> {
        let cities: Vec<CityLine> = surveyed
            .iter()
            .map(|c| {
                let (figures, error) = match &c.outcome {
                    Ok(v) => (Some(Figures::of(v)), None),
                    Err(e) => (
                        None,
                        Some(Failure {
                            code: e.code(),
                            message: e.to_string(),
                        }),
                    ),
                };
                CityLine {
                    name: c.name.clone(),
                    url: c.url.clone(),
                    verified: figures.is_some(),
                    figures,
                    error,
                }
            })
            .collect();
        let figures = Figures::total(cities.iter().filter_map(|c| c.figures.as_ref()))?;
        let verified = cities.iter().filter(|c| c.verified).count() as u64;
        Ok(NationalReport {
            national: National {
                cities_verified: verified,
                cities_failed: cities.len() as u64 - verified,
                figures,
            },
            cities,
        })
    }

    /// The plain table: one line a city, then the nation.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<16} {:>9} {:>14} {:>14} {:>14} {:>14} {:>8} {:>14} {:>14} {:>14} {:>14} {:>8} {:>8}  status\n",
            "city", "entries", "pledged", "available", "reserved", "delivered", "claims",
            "claims value", "unreserved", "reserved", "consumed", "secured", "pledged"
        );
        for c in &self.cities {
            match (&c.figures, &c.error) {
                (Some(f), _) => out.push_str(&row(&c.name, f, "verified")),
                (None, Some(e)) => out.push_str(&format!(
                    "{:<16} FAILED {}: {}\n",
                    c.name, e.code, e.message
                )),
                (None, None) => out.push_str(&format!("{:<16} FAILED\n", c.name)),
            }
        }
        let n = &self.national;
        let status = format!(
            "{} cities verified, {} failed (not in the totals)",
            n.cities_verified, n.cities_failed
        );
        out.push_str(&row("NATIONAL", &n.figures, &status));
        out
    }
}

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn row(name: &str, f: &Figures, status: &str) -> String {
    let (p, c) = (&f.pool, &f.claims);
    format!(
        "{:<16} {:>9} {:>14} {:>14} {:>14} {:>14} {:>8} {:>14} {:>14} {:>14} {:>14} {:>8} {:>8}  {status}\n",
        name, f.size, p.pledged, p.available, p.reserved, p.delivered, c.count, c.value,
        c.unreserved, c.reserved, c.consumed, percent(f.coverage.secured),
        percent(f.coverage.pledged)
    )
}
