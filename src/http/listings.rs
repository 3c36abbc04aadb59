//! Listings for the web app's pages (issues 13 and 18), each a bounded page:
//!
//! | route | what |
//! |---|---|
//! | `GET /v1/institutions/{id}/pledges?after=` | every pledge of an institution, in id order |
//! | `GET /v1/pledges?grade=&subjects=&districts=&online=&after=` | the open pledged courses that fit a family's choice |
//! | `GET /v1/lessons/{id}?from=` | a lesson and its dispute, each with its state proof, and their entries proven ([`super::balances`]) |
//! | `GET /v1/checkpoints?from=` | the checkpoints the log signed, with their verified cosignatures |
//!
//! A listing of pledges is the server's selection, not a proof: the page checks each
//! pledge it shows through its proven balance (`GET /v1/pledges/{id}`). A page holds at
//! most [`LISTING_PAGE_MAX`] rows, and `next` is the id to pass as `after` for the
//! following one (`null` on the last page). The checkpoint history reads at most
//! [`CHECKPOINT_PAGE_MAX`] checkpoints and [`CHECKPOINT_PAGE_RECORDS_MAX`] records of
//! `log.dat` a page; each cosignature line in it was verified in the request that serves
//! it, under the registered key of its association ([`super::cosign`]).
//!
//! ```
//! use lesson_ledger::http::listings::PledgeFilter;
//! let f: PledgeFilter = serde_json::from_str(r#"{"grade":5,"districts":"xuhui,minhang"}"#).unwrap();
//! assert_eq!(f.grade, Some(5));
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::balances::{evidence, find, page, proven, write_paged};
use super::error::ApiError;
use super::AppState;
use crate::api::{LessonAnswer, PageQuery};
use crate::ledger::objects::{Dispute, Lesson, Party, Pledge};
use crate::ledger::payload::Role;
use crate::ledger::state::{get_object, Table, TableScan, Value};
use crate::ledger::units::Id;
use crate::ledger::writer::Ledger;
use crate::log::note::SignedCheckpoint;

/// Most rows in one page of a pledge listing.
pub const LISTING_PAGE_MAX: usize = 50;
/// Most checkpoints in one page of the history.
pub const CHECKPOINT_PAGE_MAX: usize = 32;
/// Most records of `log.dat` one page of the history reads (two full batches).
pub const CHECKPOINT_PAGE_RECORDS_MAX: usize = 2 * crate::limits::BATCH_ENTRIES_MAX + 8;
/// Most ids in one list parameter (`subjects`, `districts`).
pub const FILTER_IDS_MAX: usize = 16;

/// One pledge as listed: its course, its capacity in lessons, and the seats left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PledgeRow {
    /// The pledge's id.
    pub pledge: String,
    /// Id of the donor institution.
    pub institution: String,
    /// The subject taught.
    pub subject: String,
    /// Lowest grade taught, 1 to 12.
    pub grade_min: u64,
    /// Highest grade taught, 1 to 12.
    pub grade_max: u64,
    /// Where it is taught; `null` for an online course.
    pub district: Option<String>,
    /// Whether it is taught online.
    pub online: bool,
    /// Seats offered.
    pub seats: u64,
    /// Lessons one seat holds.
    pub lessons_per_seat: u64,
    /// Fen.
    pub value_per_lesson: u64,
    /// Start of validity, µs of ledger time since the epoch.
    pub valid_from_micros: u64,
    /// End of validity (excluded), µs of ledger time since the epoch.
    pub valid_until_micros: u64,
    /// Entry index of the approval, `null` while awaiting it.
    pub approved_at: Option<u64>,
    /// Lessons not yet allocated.
    pub available: u64,
    /// Lessons reserved by open allocations.
    pub reserved: u64,
    /// Lessons consumed.
    pub delivered: u64,
    /// Lessons the donor withdrew.
    pub withdrawn: u64,
    /// Whole seats still available: `available / lessons_per_seat`.
    pub seats_left: u64,
}

impl From<&Pledge> for PledgeRow {
    fn from(p: &Pledge) -> PledgeRow {
        let available = p.capacity.available().0;
        PledgeRow {
            pledge: p.pledge.to_string(),
            institution: p.institution.to_string(),
            subject: p.subject.to_string(),
            grade_min: p.grade_min,
            grade_max: p.grade_max,
            district: p.district.as_ref().map(ToString::to_string),
            online: p.online,
            seats: p.seats,
            lessons_per_seat: p.lessons_per_seat,
            value_per_lesson: p.value_per_lesson.0,
            valid_from_micros: p.valid_from_micros,
            valid_until_micros: p.valid_until_micros,
            approved_at: p.approved_at,
            available,
            reserved: p.capacity.reserved().0,
            delivered: p.capacity.delivered().0,
            withdrawn: p.capacity.withdrawn().0,
            seats_left: available.checked_div(p.lessons_per_seat).unwrap_or(0),
        }
    }
}

/// A page of pledges.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PledgePage {
    /// The rows, in pledge id order.
    pub pledges: Vec<PledgeRow>,
    /// The `after` of the next page, `None` on the last.
    pub next: Option<String>,
}

/// `?after=`: the pledge id the page starts after.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfterQuery {
    /// The pledge id the page starts after; absent: the first page.
    #[serde(default)]
    pub after: Option<String>,
}

/// The filters of `GET /v1/pledges`. A course is listed only if it is open: approved,
/// with lessons available, not past its `valid_until`, and its institution neither
/// banned nor closed; then if it fits every filter given.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PledgeFilter {
    /// The claim's grade: within the course's grade range.
    #[serde(default)]
    pub grade: Option<u64>,
    /// Comma-separated subject ids: the course's subject is one of them.
    #[serde(default)]
    pub subjects: Option<String>,
    /// Comma-separated districts: an in-person course is in one of them (absent: any).
    #[serde(default)]
    pub districts: Option<String>,
    /// Whether online courses are listed (default true).
    #[serde(default)]
    pub online: Option<bool>,
    /// The pledge id the page starts after.
    #[serde(default)]
    pub after: Option<String>,
}

/// The ids of a comma-separated list parameter, each a valid id.
fn id_list(field: &'static str, text: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    let ids: Vec<String> = text.split(',').map(str::to_owned).collect();
    if ids.len() > FILTER_IDS_MAX {
        return Err(ApiError::bad_request(
            "too_many_filter_ids",
            format!("{field}: at most {FILTER_IDS_MAX} ids"),
        ));
    }
    for id in &ids {
        valid_id(field, id)?;
    }
    Ok(Some(ids))
}

fn valid_id(field: &'static str, id: &str) -> Result<(), ApiError> {
    Id::new(field, id)
        .map(|_| ())
        .map_err(|e| ApiError::bad_request("malformed_id", e.to_string()))
}

/// The filters, checked once.
struct Fit {
    grade: Option<u64>,
    subjects: Option<Vec<String>>,
    districts: Option<Vec<String>>,
    online: bool,
    now_micros: u64,
}

impl Fit {
    fn new(f: &PledgeFilter) -> Result<Fit, ApiError> {
        let now_micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(ApiError::internal)?
            .as_micros();
        Ok(Fit {
            grade: f.grade,
            subjects: id_list("subject", f.subjects.as_deref())?,
            districts: id_list("district", f.districts.as_deref())?,
            online: f.online.unwrap_or(true),
            now_micros: u64::try_from(now_micros).map_err(ApiError::internal)?,
        })
    }

    /// Whether `p` is open and fits; reads its institution.
    fn fits(&self, ledger: &Ledger, p: &Pledge) -> Result<bool, ApiError> {
        let open = p.approved_at.is_some()
            && p.capacity.available().0 > 0
            && self.now_micros < p.valid_until_micros;
        let grade = self
            .grade
            .map_or(true, |g| (p.grade_min..=p.grade_max).contains(&g));
        let subject = self
            .subjects
            .as_ref()
            .map_or(true, |s| s.iter().any(|x| x == p.subject.as_str()));
        let in_district = p.district.as_ref().is_some_and(|d| {
            self.districts
                .as_ref()
                .map_or(true, |ds| ds.iter().any(|x| x == d.as_str()))
        });
        if !(open && grade && subject && ((self.online && p.online) || in_district)) {
            return Ok(false);
        }
        let donor = get_object::<Party, _>(ledger.state(), p.institution.as_str())
            .map_err(ApiError::internal)?;
        Ok(donor.is_some_and(|d| d.banned_at.is_none() && d.closed_at.is_none()))
    }
}

/// One page of the pledges `keep` selects, in id order, after `after`.
fn pledge_page(
    ledger: &Ledger,
    after: Option<&str>,
    mut keep: impl FnMut(&Pledge) -> Result<bool, ApiError>,
) -> Result<PledgePage, ApiError> {
    let mut pledges = Vec::new();
    for value in ledger.state().scan_table(Table::Pledge) {
        let Value::Pledge(p) = value else {
            return Err(ApiError::internal("the pledge table holds another type"));
        };
        if after.is_some_and(|a| p.pledge.as_str() <= a) || !keep(&p)? {
            continue;
        }
        if pledges.len() == LISTING_PAGE_MAX {
            let next = pledges.last().map(|r: &PledgeRow| r.pledge.clone());
            return Ok(PledgePage { pledges, next });
        }
        pledges.push(PledgeRow::from(&*p));
    }
    Ok(PledgePage {
        pledges,
        next: None,
    })
}

/// `GET /v1/institutions/{id}/pledges`: every pledge the institution offered, whatever
/// its state.
///
/// # Errors
/// `malformed_id` (400), `institution_not_found` (404: no such party, or not an
/// institution).
pub async fn get_institution_pledges(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(page): Query<AfterQuery>,
) -> Result<Json<PledgePage>, ApiError> {
    valid_id("institution", &id)?;
    if let Some(after) = &page.after {
        valid_id("pledge", after)?;
    }
    app.read(move |ledger| {
        let party = get_object::<Party, _>(ledger.state(), &id).map_err(ApiError::internal)?;
        if party.map_or(true, |p| p.role != Role::Institution) {
            return Err(ApiError::NotFound {
                what: "institution",
                id,
            });
        }
        pledge_page(ledger, page.after.as_deref(), |p| {
            Ok(p.institution.as_str() == id)
        })
    })
    .await
    .map(Json)
}

/// `GET /v1/pledges`: the open courses that fit the filters ([`PledgeFilter`]).
///
/// # Errors
/// `malformed_id`, `too_many_filter_ids` (400).
pub async fn get_open_pledges(
    State(app): State<AppState>,
    Query(filter): Query<PledgeFilter>,
) -> Result<Json<PledgePage>, ApiError> {
    let fit = Fit::new(&filter)?;
    if let Some(after) = &filter.after {
        valid_id("pledge", after)?;
    }
    app.read(move |ledger| pledge_page(ledger, filter.after.as_deref(), |p| fit.fits(ledger, p)))
        .await
        .map(Json)
}

/// `GET /v1/lessons/{id}`: a lesson and its dispute, each with its state proof, and
/// every entry behind them, proven and paged like a balance ([`LessonAnswer`]; the
/// family page shows a disputed lesson from these).
///
/// # Errors
/// `malformed_id` (400), `lesson_not_found` (404, with its absence proof),
/// `page_out_of_range` (400), `unavailable` (503).
pub async fn get_lesson(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(page_query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    valid_id("lesson", &id)?;
    let state = app.clone();
    app.read(move |ledger| {
        let lesson: Lesson = find(&state, ledger, "lesson", &id)?;
        let dispute = match &lesson.dispute {
            Some(d) => Some(
                get_object::<Dispute, _>(ledger.state(), d.as_str())
                    .map_err(ApiError::internal)?
                    .ok_or_else(|| ApiError::internal("a lesson names an unknown dispute"))?,
            ),
            None => None,
        };
        let (state_note, checkpoint) = evidence(&state, ledger)?;
        let mut indexes = lesson.entries.clone();
        indexes.extend(dispute.iter().flat_map(|d| d.entries.iter().copied()));
        let (entries, next) = page(&state, ledger, indexes, page_query.from)?;
        let answer = LessonAnswer {
            lesson: proven(ledger, lesson),
            dispute: dispute.map(|d| proven(ledger, d)),
            state_note,
            checkpoint,
            entries: Vec::new(),
            next,
        };
        write_paged(&answer, &entries)
    })
    .await
    .map(super::json_body)
}

/// One checkpoint of the history.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRow {
    /// Its tree size.
    pub size: u64,
    /// The signed note, with the cosignature lines that verified in this request.
    pub checkpoint: String,
}

/// A page of the checkpoint history.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointPage {
    /// Oldest first.
    pub checkpoints: Vec<CheckpointRow>,
    /// The `from` of the next page, `None` once the log's end is reached.
    pub next: Option<u64>,
}

/// `?from=`: the smallest tree size wanted (default 1).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FromQuery {
    /// The smallest tree size wanted; absent: 1.
    #[serde(default)]
    pub from: Option<u64>,
}

/// Refuses a listing that starts past the log: `size_out_of_range` (400). The one check
/// of the size-ordered listings (`GET /v1/checkpoints`, `GET /v1/state-notes`).
///
/// # Errors
/// `size_out_of_range` (400) for `from` past the log's size.
pub(super) fn listed_from(log: &crate::log::store::Log, from: u64) -> Result<(), ApiError> {
    if from > log.size() {
        return Err(ApiError::bad_request(
            "size_out_of_range",
            format!("the log has {} entries, not {from}", log.size()),
        ));
    }
    Ok(())
}

/// `GET /v1/checkpoints`: the checkpoints the log signed from tree size `from` on,
/// oldest first, each with the associations' cosignatures stored for it that verify
/// now under their registered keys.
///
/// # Errors
/// `size_out_of_range` (400) for `from` past the log's size.
pub async fn get_checkpoints(
    State(app): State<AppState>,
    Query(query): Query<FromQuery>,
) -> Result<Json<CheckpointPage>, ApiError> {
    let from = query.from.unwrap_or(1);
    // Reads log.dat and the cosignature files, and verifies signatures: off the runtime.
    app.read_blocking(move |ledger| {
        let log = ledger.log();
        listed_from(log, from)?;
        let (found, next) = log
            .checkpoints_from(from, CHECKPOINT_PAGE_MAX, CHECKPOINT_PAGE_RECORDS_MAX)
            .map_err(ApiError::internal)?;
        let checkpoints = found
            .into_iter()
            .map(|(size, text)| {
                let signed = SignedCheckpoint::parse_and_verify(text.as_bytes(), log.verifier())
                    .map_err(ApiError::internal)?;
                let checkpoint = super::cosign::with_stored_cosignatures(ledger, &signed);
                Ok(CheckpointRow { size, checkpoint })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(CheckpointPage { checkpoints, next })
    })
    .await
    .map(Json)
}
