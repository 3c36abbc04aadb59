//! `national`: every city's published tree verified and its pool, claims and coverage
//! reported with the national totals ([`crate::national`]).

use std::fs;
use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;
use crate::client::Trust;
use crate::log::note::NoteVerifier;
use crate::national::report::NationalReport;
use crate::national::{survey, City};

#[derive(Debug, Args)]
pub struct NationalArgs {
    /// A city, `NAME=URL=KEYFILE`: its name, the base URL of its published tree (as
    /// `publish` writes it, served by any web server, or a `serve`), and a file holding
    /// its operator's verifier key (as `init` writes `operator.pub`). Repeatable.
    #[arg(long = "city", value_name = "NAME=URL=KEYFILE")]
    pub cities: Vec<String>,
    /// A file of cities, one `NAME=URL=KEYFILE` a line (blank lines and lines starting
    /// with `#` skipped; a relative KEYFILE is relative to the file's directory).
    #[arg(long, value_name = "FILE")]
    pub cities_file: Option<PathBuf>,
    /// An association's verifier key whose cosignature counts (repeatable).
    #[arg(long = "association-key", value_name = "VKEY")]
    pub association_keys: Vec<String>,
    /// Cosignatures of distinct associations each city's checkpoint must carry.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub witnesses: usize,
    /// Print the report as JSON (`schemas/README.md`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One `NAME=URL=KEYFILE` (the URL may hold `=`: the name ends at the first, the key
/// file starts after the last), the key file relative to `base`.
fn parse_city(
    spec: &str,
    base: &Path,
    trust: &dyn Fn(NoteVerifier) -> Result<Trust, CliError>,
) -> Result<City, CliError> {
    let usage = || CliError::Usage(format!("--city {spec:?}: expected NAME=URL=KEYFILE"));
    let (name, rest) = spec.split_once('=').ok_or_else(usage)?;
    let (url, keyfile) = rest.rsplit_once('=').ok_or_else(usage)?;
    if name.is_empty() || url.is_empty() || keyfile.is_empty() {
        return Err(usage());
    }
    let path = base.join(keyfile);
    let vkey = fs::read_to_string(&path).map_err(|source| CliError::Io {
        path: path.clone(),
        source,
    })?;
    let operator = NoteVerifier::from_vkey(vkey.trim())
        .map_err(|source| CliError::VerifierKey { path, source })?;
    Ok(City {
        name: name.to_owned(),
        url: url.to_owned(),
        trust: trust(operator)?,
    })
}

/// The cities of the command line, then those of the file.
fn cities(args: &NationalArgs) -> Result<Vec<City>, CliError> {
    let associations = args
        .association_keys
        .iter()
        .map(|v| {
            NoteVerifier::from_vkey(v)
                .map_err(|e| CliError::Usage(format!("--association-key {v}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let trust = |operator| {
        Trust::witnessed(operator, associations.clone(), args.witnesses, None)
            .map_err(|e| CliError::Usage(e.to_string()))
    };
    let mut cities = Vec::new();
    for spec in &args.cities {
        cities.push(parse_city(spec, Path::new("."), &trust)?);
    }
    if let Some(file) = &args.cities_file {
        let text = fs::read_to_string(file).map_err(|source| CliError::Io {
            path: file.clone(),
            source,
        })?;
        let base = file.parent().unwrap_or(Path::new("."));
        for line in text.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') {
                cities.push(parse_city(line, base, &trust)?);
            }
        }
    }
    if cities.is_empty() {
        return Err(CliError::Usage(
            "no city: give --city or --cities-file".into(),
        ));
    }
    Ok(cities)
}

/// `national`: prints the report; fails (exit 1) when a city did not verify, after
/// printing it.
///
/// # Errors
/// [`CliError::Usage`] for the arguments, [`CliError::CitiesFailed`] when a city was
/// left out of the totals, [`CliError::NationalTotal`].
pub fn national(args: NationalArgs) -> Result<(), CliError> {
    let cities = cities(&args)?;
    let report = NationalReport::new(&survey(&cities)).map_err(CliError::NationalTotal)?;
    if args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Usage(format!("the report as JSON: {e}")))?;
        println!("{json}");
    } else {
        print!("{}", report.table());
    }
    match report.national.cities_failed {
        0 => Ok(()),
        failed => Err(CliError::CitiesFailed { failed }),
    }
}
