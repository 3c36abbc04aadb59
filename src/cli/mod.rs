//! The command line: argument definitions (clap) and the commands behind them.
//!
//! Each command returns a typed [`CliError`]; `main` maps it to an exit code:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | verification failed: the audit found a problem, or a proof does not verify |
//! | 2 | usage error (bad arguments) |
//! | 3 | input refused: an entry was not appended (bad envelope, rule broken, conflict) |
//! | 4 | the store could not be used: missing, damaged (fail-closed), or an I/O fault |

mod backup_command;
mod client_commands;
mod demo_command;
mod error;
mod input;
mod ledger_commands;
mod log_commands;
mod match_command;
mod mirror_command;
mod national_command;
mod publish_command;
mod witness_command;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use error::CliError;

/// Runs one parsed command line: the one place that knows which module runs which
/// command (the command modules never call one another).
///
/// # Errors
/// A [`CliError`] whose `exit_code` `main` returns.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Init(args) => log_commands::init(args),
        Command::Key(args) => {
            println!("{}", log_commands::current_operator_vkey(&args.data)?);
            Ok(())
        }
        Command::RotateOperatorKey(args) => log_commands::rotate_operator_key(&args.data),
        Command::Keygen(args) => log_commands::keygen(args),
        Command::Sign(args) => log_commands::sign(args),
        Command::Append(args) => log_commands::append(args),
        Command::Checkpoint(args) => log_commands::checkpoint(args),
        Command::Proof(ProofCommand::Inclusion(args)) => log_commands::inclusion(args),
        Command::Proof(ProofCommand::Consistency(args)) => log_commands::consistency(args),
        Command::Verify(args) => match (args.data.clone(), &args.url) {
            (Some(data), _) => log_commands::verify_data(&data, args),
            (None, Some(url)) => client_commands::verify_remote(url, &args),
            (None, None) => Err(CliError::Usage("--data or --url is required".into())),
        },
        Command::Balance(args) => ledger_commands::balance(args),
        Command::Report(args) => ledger_commands::report(args),
        Command::Demo(args) => demo_command::demo(args),
        Command::Match(args) => match_command::run_match_command(args),
        Command::Serve(args) => Ok(crate::http::serve(
            &args.data.data,
            args.addr,
            args.witnesses,
        )?),
        Command::Witness(args) => witness_command::witness(args, log_commands::load_signer),
        Command::Mirror(args) => mirror_command::mirror(args, log_commands::load_signer),
        Command::Client(command) => client_commands::run(command),
        Command::Backup(args) => backup_command::backup(args),
        Command::Publish(args) => publish_command::publish(args),
        Command::National(args) => national_command::national(args),
    }
}

/// Lesson Ledger: an append-only, signed, publicly verifiable ledger of prepaid lessons.
#[derive(Debug, Parser)]
#[command(name = "lesson-ledger", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success; 1 verification failed; 2 usage error; \
3 input refused; 4 store missing, damaged or unusable."
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new log and its operator key in DIR (refuses to overwrite).
    Init(InitArgs),
    /// Print the operator's C2SP verifier key (the key that signs checkpoints).
    Key(DataArg),
    /// Change the operator's key (server stopped): a new key signs from now on; the
    /// change is a `key_rotated` entry that old and new key sign, in a batch whose
    /// checkpoint both keys sign. Prints the new verifier key.
    RotateOperatorKey(DataArg),
    /// Generate an Ed25519 key pair: PREFIX.key (PKCS#8 v1 PEM as OpenSSL writes it,
    /// mode 0600) and PREFIX.pub; or, with --from, name a key made elsewhere (OpenSSL).
    Keygen(KeygenArgs),
    /// Sign a payload into a DSSE envelope (printed as JSON).
    Sign(SignArgs),
    /// Append envelopes to the log and print a receipt (or the refusal) for each.
    Append(AppendArgs),
    /// Print the latest signed checkpoint (or all of them).
    Checkpoint(CheckpointArgs),
    /// Print inclusion or consistency proofs, as the JSON of `GET /v1/proofs/...` (roots
    /// come signed, from `checkpoint --all`).
    #[command(subcommand)]
    Proof(ProofCommand),
    /// Audit the whole ledger from disk: records, leaves, signatures, checkpoints, and a
    /// replay of every entry under the rules compared with the stored state.
    Verify(VerifyArgs),
    /// Print a balance (claim, pledge, allocation or student) with the entries it derives from.
    Balance(BalanceArgs),
    /// Print a closed institution's liability report, or the pool's totals.
    Report(ReportArgs),
    /// Match open claims to approved pledges and record the allocations (or, with
    /// --dry-run, print what would be allocated and the figures, writing nothing).
    Match(MatchArgs),
    /// Play the whole mechanism end to end on synthetic data: parties, closures, claims,
    /// pledges, matching, lessons, an independent audit and a report.
    Demo(DemoArgs),
    /// Copy a ledger directory (a server may be running on it) up to its last sealed
    /// batch, without the operator's private key unless asked; prints the copy's checkpoint.
    Backup(backup_command::BackupArgs),
    /// Publish the log's read side (C2SP tlog tiles, checkpoint, state notes) as static
    /// files to a directory or object storage that any web server serves.
    Publish(publish_command::PublishArgs),
    /// The national view: read every city's published tree, verify its checkpoint,
    /// state note and pool proof, and report each city's pool, claims and coverage with
    /// the totals of the cities verified.
    National(national_command::NationalArgs),
    /// Serve the ledger over HTTP until SIGTERM or Ctrl-C (see `lesson_ledger::http`).
    Serve(ServeArgs),
    /// Run a C2SP tlog-witness: cosign the checkpoints of the logs given, each only if it
    /// extends the last one cosigned (until SIGTERM or Ctrl-C).
    Witness(WitnessArgs),
    /// Mirror an origin ledger (C2SP tlog-mirror): follow it by checkpoints, verify and
    /// replay every entry, cosign as a mirror and serve it read-only.
    Mirror(mirror_command::MirrorArgs),
    /// Talk to a running server: submit envelopes, fetch and check balances.
    #[command(subcommand)]
    Client(ClientCommand),
}

/// How big a city the demo plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScaleArg {
    /// About 30 students: under 20 s, most of it waiting out the 15 s window.
    Tiny,
    /// About 2,000 students and a pool over 1.4 billion yuan: about a minute.
    Small,
    /// A million claims: long.
    City,
}

/// The arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The demo's directory (ledger in DIR/ledger, report in DIR/report); default: a
    /// new directory under the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// How many students, institutions and pledges.
    #[arg(long, value_enum, default_value_t = ScaleArg::Small)]
    pub scale: ScaleArg,
    /// The seed of every random choice and key (print it, replay it).
    #[arg(long, default_value_t = crate::demo::SEED_DEFAULT)]
    pub seed: u64,
    /// Leave the server running at the end and print the URLs worth opening (until Ctrl-C).
    #[arg(long)]
    pub keep_serving: bool,
}

/// The subcommands of `client`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Submit envelope files (JSON, or JSON Lines if `.jsonl`); print each result, after
    /// checking each receipt against the envelope submitted and the operator key.
    Submit(ClientSubmitArgs),
    /// Fetch a balance and verify every proof against the operator-signed checkpoint.
    Balance(ClientBalanceArgs),
    /// Say what a claim may be redeemed for (`claim_preferences_set`): build the entry,
    /// sign it with the student's key, submit it and check the receipt.
    Preferences(ClientPreferencesArgs),
}

/// The arguments of `client preferences`.
#[derive(Debug, Args)]
pub struct ClientPreferencesArgs {
    /// The server's base URL.
    #[arg(long)]
    pub url: String,
    /// The student's key pair, as `keygen` wrote it: PREFIX.key and PREFIX.pub.
    #[arg(long, value_name = "PREFIX")]
    pub key: PathBuf,
    /// The claim.
    #[arg(long)]
    pub claim: String,
    /// Accepted subjects, most wanted first (1 to 8, comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub subjects: Vec<String>,
    /// Districts accepted besides the claim's own (up to 16, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub districts: Vec<String>,
    /// Online courses are accepted.
    #[arg(long)]
    pub online: bool,
    /// A pledged course asked for by pledge id, most wanted first (repeat, up to 5).
    #[arg(long = "request", value_name = "PLEDGE")]
    pub requests: Vec<String>,
    /// The entry id (default: a fresh `prefs.<claim>.<random>`).
    #[arg(long)]
    pub id: Option<String>,
    /// The operator verifier key receipts must be signed by (default: the one the
    /// server announces).
    #[arg(long, value_name = "VKEY")]
    pub operator_key: Option<String>,
}

/// The arguments of `client submit`.
#[derive(Debug, Args)]
pub struct ClientSubmitArgs {
    /// The server's base URL.
    #[arg(long)]
    pub url: String,
    /// Envelope files: one JSON envelope each, or JSON Lines if the name ends in `.jsonl`.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The operator verifier key receipts must be signed by (default: the one the
    /// server announces).
    #[arg(long, value_name = "VKEY")]
    pub operator_key: Option<String>,
}

/// The arguments of `client balance`.
#[derive(Debug, Args)]
pub struct ClientBalanceArgs {
    /// The server's base URL.
    #[arg(long)]
    pub url: String,
    /// Whose balance to fetch.
    #[command(flatten)]
    pub target: BalanceTarget,
    /// The operator verifier key you trust (default: the one the server announces).
    #[arg(long, value_name = "VKEY")]
    pub operator_key: Option<String>,
    /// How many of the associations' cosignatures the checkpoint must carry (0 trusts
    /// the operator's signature alone: a split view would go unseen).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub witnesses: usize,
    /// A consumer association's registered verifier key whose cosignature counts
    /// (repeat for several).
    #[arg(long = "association-key", value_name = "VKEY")]
    pub association_keys: Vec<String>,
    /// Remembers the last checkpoint accepted and demands consistency with it (the
    /// format `verify --url --state` keeps).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

/// The arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The ledger directory to serve.
    #[command(flatten)]
    pub data: DataArg,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// A C2SP tlog-witness to submit each new checkpoint to, `URL=VKEY`: its key must be
    /// a consumer association's registered key (repeat for several).
    #[arg(long = "witness", value_name = "URL=VKEY")]
    pub witnesses: Vec<crate::http::witnesses::WitnessTarget>,
}

/// The arguments of `witness`.
#[derive(Debug, Args)]
pub struct WitnessArgs {
    /// The witness's own directory: the latest checkpoint cosigned per log, split views.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub addr: std::net::SocketAddr,
    /// The witness's key: `PREFIX.key` or PREFIX as `keygen` writes them (the name comes
    /// from PREFIX.pub; an association uses its registered key, named by its party id).
    #[arg(long, value_name = "KEYFILE")]
    pub key: PathBuf,
    /// A log to cosign, `ORIGIN=VKEY` (the log's checkpoint key; repeat for more logs or
    /// more keys of one log).
    #[arg(long = "log", value_name = "ORIGIN=VKEY", required = true)]
    pub logs: Vec<String>,
}

/// Whose balance: exactly one of `--claim`, `--pledge`, `--allocation`, `--student`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct BalanceTarget {
    /// A claim id.
    #[arg(long)]
    pub claim: Option<String>,
    /// A pledge id.
    #[arg(long)]
    pub pledge: Option<String>,
    /// An allocation id.
    #[arg(long)]
    pub allocation: Option<String>,
    /// A student's pseudonymous ref: all of the student's claims.
    #[arg(long)]
    pub student: Option<String>,
}

/// The arguments of `balance`.
#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// The ledger directory to read.
    #[command(flatten)]
    pub data: DataArg,
    /// Whose balance to print.
    #[command(flatten)]
    pub target: BalanceTarget,
}

/// Which report: exactly one of `--institution`, `--pool`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ReportTarget {
    /// A closed institution's id: students, value owed, made good, outstanding.
    #[arg(long)]
    pub institution: Option<String>,
    /// The pool's totals: pledged, available, reserved, delivered.
    #[arg(long)]
    pub pool: bool,
}

/// The arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The ledger directory to read.
    #[command(flatten)]
    pub data: DataArg,
    /// Which report to print.
    #[command(flatten)]
    pub target: ReportTarget,
}

/// `--data DIR`: the log directory.
#[derive(Debug, Args)]
pub struct DataArg {
    /// The log directory.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
}

/// The arguments of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory to create the log in.
    #[command(flatten)]
    pub data: DataArg,
    /// The checkpoint origin, e.g. `lessons.example/shanghai` (C2SP tlog-checkpoint).
    #[arg(long)]
    pub origin: String,
    /// The operator key's name in checkpoint signatures (default: the origin, as C2SP
    /// tlog-checkpoint recommends: "the log's key name SHOULD match the origin line").
    #[arg(long)]
    pub key_name: Option<String>,
    /// The operator's party ref in the genesis.
    #[arg(long, default_value = "operator")]
    pub operator: String,
    /// A genesis payload (JSON) to start the ledger with; `operator_key` and `origin` are
    /// filled in. Default: Shanghai's 16 districts, the usual subjects, a 15-day window.
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// A consumer association the genesis declares (at least one, at most 7): the path
    /// prefix of its key (`PREFIX.key`, `PREFIX.pub`, as `keygen` writes them), whose
    /// name is the association's party id (`assoc-` + hex). Each co-signs the genesis.
    #[arg(long = "association", value_name = "PREFIX", required = true)]
    pub associations: Vec<PathBuf>,
}

/// The arguments of `match`.
#[derive(Debug, Args)]
pub struct MatchArgs {
    /// The ledger directory to match in.
    #[command(flatten)]
    pub data: DataArg,
    /// Print the plans and the figures; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The arguments of `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key's name (a pseudonymous reference, never a person's name).
    #[arg(long)]
    pub name: String,
    /// Output prefix: writes PREFIX.key and PREFIX.pub; refuses to overwrite.
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
    /// Take the private key from FILE (PKCS#8 PEM, v1 or v2, e.g. from `openssl genpkey
    /// -algorithm ed25519`) instead of generating one. PREFIX.key is then a copy of it
    /// in PKCS#8 v1, unless FILE is PREFIX.key itself (only PREFIX.pub is written).
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
}

/// The arguments of `sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// A key pair prefix made by `keygen`: PREFIX.key (PKCS#8 PEM, ours or OpenSSL's)
    /// and PREFIX.pub (its verifier key, which gives the name). Repeat for several signers.
    #[arg(long = "signer", value_name = "PREFIX", required = true)]
    pub signers: Vec<PathBuf>,
    /// The DSSE payloadType.
    #[arg(long)]
    pub payload_type: String,
    /// The payload file (`-` for standard input).
    #[arg(value_name = "FILE")]
    pub payload: PathBuf,
}

/// The arguments of `append`.
#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The ledger directory to append to.
    #[command(flatten)]
    pub data: DataArg,
    /// Envelope files: one JSON envelope each, or JSON Lines if the name ends in `.jsonl`.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Entries per group commit (one fdatasync each).
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
}

/// The arguments of `checkpoint`.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// The ledger directory to read.
    #[command(flatten)]
    pub data: DataArg,
    /// Print every checkpoint the log has signed, oldest first.
    #[arg(long)]
    pub all: bool,
}

/// The subcommands of `proof`.
#[derive(Debug, Subcommand)]
pub enum ProofCommand {
    /// Inclusion proof of one entry (by index or by entry id) in a tree size.
    Inclusion(InclusionArgs),
    /// Consistency proof between two tree sizes.
    Consistency(ConsistencyArgs),
}

/// The arguments of `proof inclusion`.
#[derive(Debug, Args)]
pub struct InclusionArgs {
    /// The ledger directory to read.
    #[command(flatten)]
    pub data: DataArg,
    /// The entry's index.
    #[arg(
        long,
        conflicts_with = "entry_id",
        required_unless_present = "entry_id"
    )]
    pub index: Option<u64>,
    /// The entry's id (BLAKE3 of its PAE, hex).
    #[arg(long)]
    pub entry_id: Option<String>,
    /// The tree size to prove against (default: the latest checkpoint's).
    #[arg(long)]
    pub size: Option<u64>,
}

/// The arguments of `proof consistency`.
#[derive(Debug, Args)]
pub struct ConsistencyArgs {
    /// The ledger directory to read.
    #[command(flatten)]
    pub data: DataArg,
    /// The older tree size.
    #[arg(long)]
    pub from: u64,
    /// The newer tree size (default: the latest checkpoint's).
    #[arg(long)]
    pub to: Option<u64>,
}

/// The arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The log directory (a local audit).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "url",
        conflicts_with = "url"
    )]
    pub data: Option<PathBuf>,
    /// A server's base URL (a remote audit from its checkpoint and tiles).
    #[arg(long)]
    pub url: Option<String>,
    /// Remote audit: the file remembering the last checkpoint verified; the next run
    /// demands a consistency proof from it.
    #[arg(long, value_name = "FILE", requires = "url")]
    pub state: Option<PathBuf>,
    /// The operator verifier key you trust (default: the one in log.json).
    #[arg(long, value_name = "VKEY")]
    pub operator_key: Option<String>,
    /// A signed checkpoint obtained earlier (e.g. from a receipt) that the log must contain.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Remote audit: a consumer association's registered verifier key whose
    /// cosignature on the checkpoint audited counts (repeat for several).
    #[arg(long = "association-key", value_name = "VKEY", requires = "url")]
    pub association_keys: Vec<String>,
    /// Remote audit: how many of those associations' cosignatures the checkpoint must
    /// carry (default 1 when association keys are given, else 0: the operator's
    /// signature alone).
    #[arg(long, value_name = "K", requires = "url")]
    pub witnesses: Option<usize>,
}
