//! The operator creates the ledger, as `lesson-ledger init` does: the directory, the
//! operator's key and bearer token, and the genesis signed by the key — the one step
//! the demo takes on the library, before any server exists. Everything after it goes
//! through HTTP.
//!
//! The genesis is the default one (Shanghai's districts, the subjects, the national
//! platform's 15-day confirmation window) with the demo's short day and allocation
//! validity (see [`Params`](super::world::Params)), so that windows genuinely pass in
//! ledger time while the demo runs.
//!
//! ```no_run
//! use lesson_ledger::demo::{create, world::World, Scale};
//! let world = World::new(1, Scale::Tiny, lesson_ledger::demo::world::now_micros());
//! let created = create::ledger(std::path::Path::new("/tmp/l"), &world)?;
//! assert_eq!(created.ledger.log().size(), 1, "the genesis");
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

use std::path::Path;

use super::world::World;
use super::{io_err, DemoError};
use crate::http::operator::ensure_token;
use crate::ledger::defaults;
use crate::ledger::payload::{DeclaredAssociation, Genesis};
use crate::ledger::writer::Ledger;
use crate::ledger::PAYLOAD_TYPE;
use crate::log::envelope::{Envelope, KeyCache};
use crate::log::keyfile;
use crate::log::note::{KeyName, NoteSigner};
use crate::log::store::{layout, Outcome};

/// The operator's party ref. (Its key is named after the origin, as C2SP
/// tlog-checkpoint recommends, like every ledger `init` makes.)
pub const OPERATOR: &str = "operator";

/// A new ledger holding its genesis, not yet served.
pub struct Created {
    /// The ledger, open for writing.
    pub ledger: Ledger,
    /// The operator's signer (its key made by the log, read back from `operator.key`).
    pub operator: NoteSigner,
    /// The genesis it holds, as signed.
    pub genesis: Genesis,
}

/// Creates the ledger in `dir` (refusing to overwrite one) and appends its genesis.
///
/// # Errors
/// `log_exists` if `dir` holds a ledger; I/O; an unreadable key; a refused genesis.
pub fn ledger(dir: &Path, world: &World) -> Result<Created, DemoError> {
    let mut ledger = Ledger::create(dir, world.origin(), world.origin())?;
    let key = keyfile::read_private_pem(&dir.join(layout::OPERATOR_KEY))
        .map_err(DemoError::OperatorKey)?;
    let operator = NoteSigner::new(KeyName::new(world.origin())?, key);
    let vkey = ledger.log().config().operator_vkey.clone();
    if operator.vkey() != vkey {
        return Err(DemoError::check("operator key", &vkey, operator.vkey()));
    }
    // As `init`: the verifier key beside the private one, for `sign --signer`, and the
    // token that authorizes the operator's requests (`POST /v1/match`).
    let pub_path = dir.join("operator.pub");
    std::fs::write(&pub_path, format!("{vkey}\n")).map_err(io_err(&pub_path))?;
    ensure_token(dir).map_err(DemoError::OperatorToken)?;

    let p = world.params();
    let mut genesis = defaults::genesis(world.origin(), OPERATOR, &vkey);
    genesis.day_micros = p.day_micros;
    genesis.allocation_validity_days = p.allocation_validity_days;
    // The consumer associations are declared here, and each co-signs the genesis.
    let associations = (0..p.associations)
        .map(|a| world.key(&World::association(a)))
        .collect::<Result<Vec<_>, _>>()?;
    genesis.associations = associations
        .iter()
        .map(|a| DeclaredAssociation {
            party: a.name().as_str().to_owned(),
            key: a.vkey(),
        })
        .collect();
    let mut signers: Vec<&NoteSigner> = vec![&operator];
    signers.extend(associations.iter().map(|a| a.as_ref()));
    let envelope = Envelope::sign(PAYLOAD_TYPE, &defaults::genesis_payload(&genesis), &signers)?;
    let verified = envelope.verify(&KeyCache::self_certifying())?;
    match ledger.submit(vec![verified])?.pop() {
        Some(Outcome::Ok(_)) => {}
        other => {
            return Err(DemoError::Setup(format!(
                "the genesis was not accepted: {other:?}"
            )))
        }
    }
    Ok(Created {
        ledger,
        operator,
        genesis,
    })
}
