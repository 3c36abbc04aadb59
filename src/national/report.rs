//! The national view's report: each city's figures (or its error code) and the national
//! totals of the cities verified, as JSON (`--json`, `schemas/README.md`) or a plain
//! table. Money in fen, as the ledger keeps it.

use serde::Serialize;

use super::{CityReport, Verified};

/// The pool's side: what was pledged and where it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PoolFigures {
    /// Fen pledged by institutions, approved (the pool's `pledged`).
    pub pledged: u64,
    /// Fen of pledged lessons not yet reserved.
    pub available: u64,
    /// Fen of pledged lessons reserved by a match, not yet delivered.
    pub reserved: u64,
    /// Fen of pledged lessons delivered (consumed by students).
    pub delivered: u64,
}

/// The claims' side: what is owed to families and where it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClaimFigures {
    /// Number of claims.
    pub count: u64,
    /// Fen owed by the claims in all.
    pub value: u64,
    /// Fen of claims not yet matched to a course.
    pub unreserved: u64,
    /// Fen of claims matched to lessons not yet taken.
    pub reserved: u64,
    /// Fen of claims consumed in lessons taken.
    pub consumed: u64,
}

/// Coverage of the claims' value: by lessons reserved or consumed (`secured`), and by
/// what was pledged (`pledged`); `None` when there is no claim.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Coverage {
    /// (reserved + consumed) / claims value.
    pub secured: Option<f64>,
    /// pledged / claims value.
    pub pledged: Option<f64>,
}

/// A city's figures, or the nation's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Figures {
    /// Entries: the checkpoint's tree size (the sum of the cities' for the nation).
    pub size: u64,
    /// The pool's side.
    pub pool: PoolFigures,
    /// The claims' side.
    pub claims: ClaimFigures,
    /// The claims' coverage.
    pub coverage: Coverage,
}

/// The totals do not fit in 64 bits.
#[derive(Debug, thiserror::Error)]
#[error("the national total of {what} does not fit in 64 bits")]
pub struct TotalOverflow {
    /// The figure whose sum overflowed.
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
    /// The stable error code ([`super::CityError::code`]).
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
}

/// One city's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CityLine {
    /// The city's name, as given.
    pub name: String,
    /// The base URL of its published tree.
    pub url: String,
    /// Whether every figure was proven; `false`: see `error`, the city is not in the totals.
    pub verified: bool,
    /// Its figures, when verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figures: Option<Figures>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

/// The national totals, of the verified cities only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct National {
    /// Cities whose figures were all proven.
    pub cities_verified: u64,
    /// Cities left out, each with its error in its line.
    pub cities_failed: u64,
    /// The sums over the verified cities.
    pub figures: Figures,
}

/// The whole report (the `--json` document).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NationalReport {
    /// One line a city, in the order given.
    pub cities: Vec<CityLine>,
    /// The totals of the verified cities.
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
