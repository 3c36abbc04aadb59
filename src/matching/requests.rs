//! Step 0: the requests phase — courses families asked for by id are served first, in
//! claim order, each claim taking its requests in its own order, within the first-pass
//! cap (so that a request never lets one claim take more than the fairness policy gives
//! before others are served).

use super::classes::{apply, Problem, State};
use super::error::MatchError;
use super::rounding::take;

/// Serve every class's requests into `state`; returns the value reserved.
pub(super) fn serve(problem: &Problem<'_>, state: &mut State) -> Result<u64, MatchError> {
    let mut served: u64 = 0;
    for c in 0..problem.claims.len() {
        let class = &problem.classes[problem.class_of[c] as usize];
        for &j in &class.requests {
            let u = state.unreserved[c];
            let spent = problem.claims[c].unreserved_fen.0 - u;
            let h = state.held[c]
                .iter()
                .find(|x| x.0 == j)
                .map_or(0, |x| u64::from(x.1));
            let offer = state.available[j as usize];
            let x = take(
                problem,
                j as usize,
                offer,
                u,
                spent,
                h,
                problem.cap.is_some(),
            );
            if x > 0 {
                apply(problem, state, c as u32, j, x)?;
                served = problem.value[j as usize]
                    .checked_mul(x)
                    .and_then(|v| served.checked_add(v))
                    .ok_or(MatchError::Overflow { what: "requested" })?;
            }
        }
    }
    Ok(served)
}
