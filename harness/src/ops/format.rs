//! The ops file format (v1): print and parse, one op per line.
//!
//! ```text
//! # tumbler ops v1
//! # generator: 1
//! # seed: 42
//! put "a@3" "v1" sync
//! merge "a@3" gen(1048576,7)
//! batch.new b1
//! batch.delete_range b1 "a@" "b@"
//! batch.commit b1 sync
//! iter.new i1 s2 "a@" -
//! iter.seek_ge i1 "b@"
//! compact_range - "z"
//! crash torn within 12
//! ```
//!
//! Rules:
//! 1. The first non-blank line is `# tumbler ops v1`. Other lines starting with `#` are comments;
//!    `# generator: <version>` and `# seed: <n>` among them fill [`OpsFile`]'s header. Blank
//!    lines are ignored; a `#` word after an op starts a trailing comment.
//! 2. Bytes are double-quoted; printable ASCII stands for itself except `"` and `\`, which are
//!    written `\"` and `\\`; every other byte is `\xNN` (two hex digits).
//! 3. An absent optional key, bound or snapshot is `-`.
//! 4. A value is quoted bytes or `gen(<len>,<seed>)` (see [`Value::expand`]).
//! 5. Writes end with the word `sync` when synced; `flush_wal sync` likewise.
//! 6. Objects are `b<n>` (batches), `s<n>` (snapshots), `i<n>` (iterators).
//!
//! Parsing never panics: a malformed line gives a [`ParseError`] with its line number.
//!
//! Size: over 600 lines: the printer, the parser and their round-trip tests of one format
//! together.

use std::fmt;

use super::{
    BatchId, CrashAt, CrashPolicy, IterId, LimitedStep, Op, OpKind, ScanEnds, SnapshotId, Value,
};

/// The first line of every ops file.
pub const MAGIC: &str = "# tumbler ops v1";

/// The largest `gen(<len>,<seed>)` value an ops file may name (64 MiB): a value is expanded
/// in memory, several times over, in every config.
pub const GEN_LEN_MAX: u32 = 64 << 20;

/// The 1-based line number of each op of a file [`parse`] accepted, in op order.
pub fn op_lines(text: &str) -> Vec<usize> {
    let mut seen_magic = false;
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if !seen_magic {
            seen_magic = true;
            continue;
        }
        if !line.starts_with('#') {
            lines.push(i + 1);
        }
    }
    lines
}

/// A parsed ops file: the header fields it records and its ops.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OpsFile {
    /// The generator version that made the file, when a generator did.
    pub generator: Option<String>,
    /// The seed the ops were generated from.
    pub seed: Option<u64>,
    pub ops: Vec<Op>,
}

/// A malformed ops file: the line (1-based) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ops file line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Prints a whole ops file, header first.
pub fn print(file: &OpsFile) -> String {
    let mut out = String::new();
    out.push_str(MAGIC);
    out.push('\n');
    if let Some(g) = &file.generator {
        out.push_str(&format!("# generator: {g}\n"));
    }
    if let Some(s) = file.seed {
        out.push_str(&format!("# seed: {s}\n"));
    }
    for op in &file.ops {
        out.push_str(&print_op(op));
        out.push('\n');
    }
    out
}

/// Parses a whole ops file.
pub fn parse(text: &str) -> Result<OpsFile, ParseError> {
    let mut file = OpsFile::default();
    let mut seen_magic = false;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let err = |message: String| ParseError { line: line_no, message };
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if !seen_magic {
            if line != MAGIC {
                return Err(err(format!("expected the header `{MAGIC}`, found `{line}`")));
            }
            seen_magic = true;
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim();
            if let Some(g) = comment.strip_prefix("generator:") {
                file.generator = Some(g.trim().to_string());
            } else if let Some(s) = comment.strip_prefix("seed:") {
                let s = s.trim();
                file.seed = Some(s.parse().map_err(|_| err(format!("seed `{s}` is not a u64")))?);
            }
            continue;
        }
        file.ops.push(parse_op(line).map_err(err)?);
    }
    if !seen_magic {
        return Err(ParseError { line: 1, message: format!("empty file: no `{MAGIC}` header") });
    }
    Ok(file)
}

/// Prints one op as one line (no newline).
pub fn print_op(op: &Op) -> String {
    let mut w = Line(op.kind().name().to_string());
    match op {
        Op::Put { key, value, sync } | Op::Merge { key, value, sync } => {
            w.bytes(key);
            w.value(value);
            w.sync(*sync);
        }
        Op::Get { key } => w.bytes(key),
        Op::Delete { key, sync } | Op::SingleDelete { key, sync } => {
            w.bytes(key);
            w.sync(*sync);
        }
        Op::DeleteRange { start, end, sync } => {
            w.bytes(start);
            w.bytes(end);
            w.sync(*sync);
        }
        Op::BatchNew { id } | Op::BatchAbort { id } | Op::BatchClear { id } => w.word(id),
        Op::BatchPut { id, key, value } | Op::BatchMerge { id, key, value } => {
            w.word(id);
            w.bytes(key);
            w.value(value);
        }
        Op::BatchDelete { id, key } | Op::BatchSingleDelete { id, key } => {
            w.word(id);
            w.bytes(key);
        }
        Op::BatchDeleteRange { id, start, end } => {
            w.word(id);
            w.bytes(start);
            w.bytes(end);
        }
        Op::BatchCommit { id, sync } => {
            w.word(id);
            w.sync(*sync);
        }
        Op::BatchIngest { ids } => {
            for id in ids {
                w.word(id);
            }
        }
        Op::BatchGet { id, snapshot, key } => {
            w.word(id);
            w.opt_snapshot(*snapshot);
            w.bytes(key);
        }
        Op::BatchScan { id, snapshot, lower, upper, ends } => {
            w.word(id);
            w.opt_snapshot(*snapshot);
            w.opt_bytes(lower.as_deref());
            w.opt_bytes(upper.as_deref());
            w.word(ends.name());
        }
        Op::Scan { lower, upper, ends } => {
            w.opt_bytes(lower.as_deref());
            w.opt_bytes(upper.as_deref());
            w.word(ends.name());
        }
        Op::MultiGet { snapshot, keys } => {
            w.opt_snapshot(*snapshot);
            for k in keys {
                w.bytes(k);
            }
        }
        Op::SnapshotNew { id } | Op::SnapshotClose { id } => w.word(id),
        Op::SnapshotGet { id, key } => {
            w.word(id);
            w.bytes(key);
        }
        Op::IterNew { id, snapshot, lower, upper, batch } => {
            w.word(id);
            w.opt_snapshot(*snapshot);
            w.opt_bytes(lower.as_deref());
            w.opt_bytes(upper.as_deref());
            if let Some(b) = batch {
                w.word(b);
            }
        }
        Op::IterNewPrefix { id, snapshot, prefix } => {
            w.word(id);
            match snapshot {
                Some(s) => w.word(s),
                None => w.word("-"),
            }
            w.bytes(prefix);
        }
        Op::IterClone { id, from } => {
            w.word(id);
            w.word(from);
        }
        Op::IterFirst { id }
        | Op::IterLast { id }
        | Op::IterNext { id }
        | Op::IterPrev { id }
        | Op::IterNextPrefix { id }
        | Op::IterRefresh { id }
        | Op::IterClose { id } => w.word(id),
        Op::IterSeekGe { id, key } | Op::IterSeekLt { id, key } => {
            w.word(id);
            w.bytes(key);
        }
        Op::IterLimited { id, step, limit } => {
            w.word(id);
            w.word(step.name());
            if let LimitedStep::SeekGe(key) | LimitedStep::SeekLt(key) = step {
                w.bytes(key);
            }
            w.bytes(limit);
        }
        Op::IterSetBounds { id, lower, upper } => {
            w.word(id);
            w.opt_bytes(lower.as_deref());
            w.opt_bytes(upper.as_deref());
        }
        Op::Flush | Op::Restart | Op::Reconfigure | Op::Checkpoint => {}
        Op::CompactRange { start, end } | Op::EstimateDiskUsage { start, end } => {
            w.opt_bytes(start.as_deref());
            w.opt_bytes(end.as_deref());
        }
        Op::FlushWal { sync } => w.sync(*sync),
        Op::BackgroundSteps { n } => w.word(n),
        Op::Crash { policy, at } => {
            w.word(policy.name());
            if let CrashAt::Within(n) = at {
                w.word("within");
                w.word(n);
            }
        }
    }
    w.0
}

/// Builds one printed line, a space before each argument.
struct Line(String);

impl Line {
    fn word(&mut self, w: impl fmt::Display) {
        self.0.push(' ');
        self.0.push_str(&w.to_string());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.0.push(' ');
        quote_into(&mut self.0, b);
    }

    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => self.bytes(b),
            None => self.word("-"),
        }
    }

    fn opt_snapshot(&mut self, s: Option<SnapshotId>) {
        match s {
            Some(s) => self.word(s),
            None => self.word("-"),
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Lit(b) => self.bytes(b),
            Value::Gen { len, seed } => self.word(format!("gen({len},{seed})")),
        }
    }

    fn sync(&mut self, sync: bool) {
        if sync {
            self.word("sync");
        }
    }
}

/// Appends `b` as a quoted string (rule 2).
pub fn quote_into(out: &mut String, b: &[u8]) {
    out.push('"');
    for &c in b {
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
}

/// `b` as a quoted string (rule 2).
pub fn quote(b: &[u8]) -> String {
    let mut s = String::new();
    quote_into(&mut s, b);
    s
}

/// One token of an op line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A quoted string, unescaped.
    Str(Vec<u8>),
    /// A run of characters other than whitespace and `"`.
    Word(String),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Str(b) => write!(f, "{}", quote(b)),
            Tok::Word(w) => write!(f, "`{w}`"),
        }
    }
}

fn tokenize(line: &str) -> Result<Vec<Tok>, String> {
    let bytes = line.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'"' {
            let start = i;
            i += 1;
            let mut s = Vec::new();
            loop {
                match bytes.get(i) {
                    None => {
                        return Err(format!("unterminated string starting at column {}", start + 1))
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        match bytes.get(i + 1) {
                            Some(b'"') => s.push(b'"'),
                            Some(b'\\') => s.push(b'\\'),
                            Some(b'x') => {
                                let hex = bytes.get(i + 2..i + 4).ok_or_else(|| {
                                    format!("truncated \\x escape at column {}", i + 1)
                                })?;
                                let hex = std::str::from_utf8(hex).ok().and_then(|h| {
                                    u8::from_str_radix(h, 16)
                                        .ok()
                                        .filter(|_| h.bytes().all(|b| b.is_ascii_hexdigit()))
                                });
                                let byte = hex.ok_or_else(|| {
                                    format!(
                                        "bad \\x escape at column {}: want two hex digits",
                                        i + 1
                                    )
                                })?;
                                s.push(byte);
                                i += 2;
                            }
                            _ => {
                                return Err(format!(
                                    "unknown escape at column {}: use \\\", \\\\ or \\xNN",
                                    i + 1
                                ))
                            }
                        }
                        i += 2;
                    }
                    Some(&b) => {
                        s.push(b);
                        i += 1;
                    }
                }
            }
            if bytes.get(i).is_some_and(|b| !b.is_ascii_whitespace()) {
                return Err(format!("missing space after the string ending at column {i}"));
            }
            toks.push(Tok::Str(s));
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'"' {
                i += 1;
            }
            let word = &line[start..i];
            if word.starts_with('#') {
                // A trailing comment ends the line.
                break;
            }
            toks.push(Tok::Word(word.to_string()));
        }
    }
    Ok(toks)
}

/// Parses one op line (no comments, no header). The error says what is wrong, without the
/// line number (the caller adds it).
pub fn parse_op(line: &str) -> Result<Op, String> {
    let toks = tokenize(line)?;
    let Some(Tok::Word(name)) = toks.first() else {
        return Err(match toks.first() {
            None => "empty op line".to_string(),
            Some(t) => format!("a line must start with an op name, found {t}"),
        });
    };
    let kind = OpKind::from_name(name).ok_or_else(|| format!("unknown op `{name}`"))?;
    let mut a = Args { toks: &toks[1..], pos: 0, op: kind.name() };
    let op = match kind {
        OpKind::Put => Op::Put { key: a.bytes("key")?, value: a.value()?, sync: a.sync()? },
        OpKind::Get => Op::Get { key: a.bytes("key")? },
        OpKind::Delete => Op::Delete { key: a.bytes("key")?, sync: a.sync()? },
        OpKind::SingleDelete => Op::SingleDelete { key: a.bytes("key")?, sync: a.sync()? },
        OpKind::Merge => Op::Merge { key: a.bytes("key")?, value: a.value()?, sync: a.sync()? },
        OpKind::DeleteRange => Op::DeleteRange {
            start: a.bytes("start key")?,
            end: a.bytes("end key")?,
            sync: a.sync()?,
        },
        OpKind::BatchNew => Op::BatchNew { id: a.batch()? },
        OpKind::BatchPut => {
            Op::BatchPut { id: a.batch()?, key: a.bytes("key")?, value: a.value()? }
        }
        OpKind::BatchDelete => Op::BatchDelete { id: a.batch()?, key: a.bytes("key")? },
        OpKind::BatchSingleDelete => Op::BatchSingleDelete { id: a.batch()?, key: a.bytes("key")? },
        OpKind::BatchMerge => {
            Op::BatchMerge { id: a.batch()?, key: a.bytes("key")?, value: a.value()? }
        }
        OpKind::BatchDeleteRange => Op::BatchDeleteRange {
            id: a.batch()?,
            start: a.bytes("start key")?,
            end: a.bytes("end key")?,
        },
        OpKind::BatchCommit => Op::BatchCommit { id: a.batch()?, sync: a.sync()? },
        OpKind::BatchAbort => Op::BatchAbort { id: a.batch()? },
        OpKind::BatchClear => Op::BatchClear { id: a.batch()? },
        OpKind::BatchIngest => {
            let mut ids = vec![a.batch()?];
            while !a.at_end() {
                ids.push(a.batch()?);
            }
            Op::BatchIngest { ids }
        }
        OpKind::BatchGet => {
            Op::BatchGet { id: a.batch()?, snapshot: a.opt_snapshot()?, key: a.bytes("key")? }
        }
        OpKind::BatchScan => {
            let (id, snapshot) = (a.batch()?, a.opt_snapshot()?);
            let (lower, upper, ends) = scan_args(&mut a)?;
            Op::BatchScan { id, snapshot, lower, upper, ends }
        }
        OpKind::Scan => {
            let (lower, upper, ends) = scan_args(&mut a)?;
            Op::Scan { lower, upper, ends }
        }
        OpKind::MultiGet => {
            let snapshot = a.opt_snapshot()?;
            let mut keys = vec![a.bytes("key")?];
            while !a.at_end() {
                keys.push(a.bytes("key")?);
            }
            Op::MultiGet { snapshot, keys }
        }
        OpKind::SnapshotNew => Op::SnapshotNew { id: a.snapshot()? },
        OpKind::SnapshotGet => Op::SnapshotGet { id: a.snapshot()?, key: a.bytes("key")? },
        OpKind::SnapshotClose => Op::SnapshotClose { id: a.snapshot()? },
        OpKind::IterNew => Op::IterNew {
            id: a.iter()?,
            snapshot: a.opt_snapshot()?,
            lower: a.opt_bytes("lower bound")?,
            upper: a.opt_bytes("upper bound")?,
            batch: if a.at_end() { None } else { Some(a.batch()?) },
        },
        OpKind::IterNewPrefix => Op::IterNewPrefix {
            id: a.iter()?,
            snapshot: a.opt_snapshot()?,
            prefix: a.bytes("prefix")?,
        },
        OpKind::IterClone => Op::IterClone { id: a.iter()?, from: a.iter()? },
        OpKind::IterRefresh => Op::IterRefresh { id: a.iter()? },
        OpKind::IterNextPrefix => Op::IterNextPrefix { id: a.iter()? },
        OpKind::IterLimited => {
            let id = a.iter()?;
            let step = match a.word("next, prev, seek_ge or seek_lt")?.as_str() {
                "next" => LimitedStep::Next,
                "prev" => LimitedStep::Prev,
                "seek_ge" => LimitedStep::SeekGe(a.bytes("seek key")?),
                "seek_lt" => LimitedStep::SeekLt(a.bytes("seek key")?),
                other => {
                    return Err(format!(
                        "iter.limited moves by next, prev, seek_ge or seek_lt, not {other:?}"
                    ))
                }
            };
            Op::IterLimited { id, step, limit: a.bytes("limit")? }
        }
        OpKind::IterFirst => Op::IterFirst { id: a.iter()? },
        OpKind::IterLast => Op::IterLast { id: a.iter()? },
        OpKind::IterSeekGe => Op::IterSeekGe { id: a.iter()?, key: a.bytes("seek key")? },
        OpKind::IterSeekLt => Op::IterSeekLt { id: a.iter()?, key: a.bytes("seek key")? },
        OpKind::IterNext => Op::IterNext { id: a.iter()? },
        OpKind::IterPrev => Op::IterPrev { id: a.iter()? },
        OpKind::IterSetBounds => Op::IterSetBounds {
            id: a.iter()?,
            lower: a.opt_bytes("lower bound")?,
            upper: a.opt_bytes("upper bound")?,
        },
        OpKind::IterClose => Op::IterClose { id: a.iter()? },
        OpKind::Flush => Op::Flush,
        OpKind::Checkpoint => Op::Checkpoint,
        OpKind::CompactRange => {
            Op::CompactRange { start: a.opt_bytes("start key")?, end: a.opt_bytes("end key")? }
        }
        OpKind::EstimateDiskUsage => {
            Op::EstimateDiskUsage { start: a.opt_bytes("start key")?, end: a.opt_bytes("end key")? }
        }
        OpKind::FlushWal => Op::FlushWal { sync: a.sync()? },
        OpKind::BackgroundSteps => Op::BackgroundSteps { n: a.number("step count")? },
        OpKind::Restart => Op::Restart,
        OpKind::Reconfigure => Op::Reconfigure,
        OpKind::Crash => {
            let policy = a.word("crash policy (drop, torn, dirs or keep)")?;
            let policy =
                CrashPolicy::ALL.into_iter().find(|p| p.name() == policy).ok_or_else(|| {
                    format!("crash: unknown policy `{policy}`, want drop, torn, dirs or keep")
                })?;
            let at = if a.at_end() {
                CrashAt::Boundary
            } else {
                let w = a.word("`within`")?;
                if w != "within" {
                    return Err(format!("crash: expected `within <n>` or nothing, found `{w}`"));
                }
                CrashAt::Within(a.number("filesystem call offset")?)
            };
            Op::Crash { policy, at }
        }
    };
    a.finish()?;
    Ok(op)
}

/// The bounds and ends of a scan.
type ScanArgs = (Option<Vec<u8>>, Option<Vec<u8>>, ScanEnds);

/// The `LOWER UPPER ENDS` arguments of `scan` and `batch.scan`.
fn scan_args(a: &mut Args<'_>) -> Result<ScanArgs, String> {
    let lower = a.opt_bytes("lower bound")?;
    let upper = a.opt_bytes("upper bound")?;
    let ends = a.word("scan ends (front, back or both)")?;
    let ends = ScanEnds::ALL
        .into_iter()
        .find(|e| e.name() == ends)
        .ok_or_else(|| format!("{}: unknown ends `{ends}`, want front, back or both", a.op))?;
    Ok((lower, upper, ends))
}

/// A cursor over an op's arguments; each getter names what it expected in its error.
struct Args<'a> {
    toks: &'a [Tok],
    pos: usize,
    op: &'static str,
}

impl Args<'_> {
    fn next(&mut self, what: &str) -> Result<&Tok, String> {
        let t = self.toks.get(self.pos).ok_or_else(|| format!("{}: missing {what}", self.op))?;
        self.pos += 1;
        Ok(t)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    fn finish(&self) -> Result<(), String> {
        match self.toks.get(self.pos) {
            None => Ok(()),
            Some(t) => Err(format!("{}: unexpected extra argument {t}", self.op)),
        }
    }

    fn bytes(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let op = self.op;
        match self.next(what)? {
            Tok::Str(b) => Ok(b.clone()),
            t => Err(format!("{op}: expected a quoted string for {what}, found {t}")),
        }
    }

    fn opt_bytes(&mut self, what: &str) -> Result<Option<Vec<u8>>, String> {
        let op = self.op;
        match self.next(what)? {
            Tok::Str(b) => Ok(Some(b.clone())),
            Tok::Word(w) if w == "-" => Ok(None),
            t => Err(format!("{op}: expected a quoted string or `-` for {what}, found {t}")),
        }
    }

    fn word(&mut self, what: &str) -> Result<String, String> {
        let op = self.op;
        match self.next(what)? {
            Tok::Word(w) => Ok(w.clone()),
            t => Err(format!("{op}: expected {what}, found {t}")),
        }
    }

    fn number<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, String> {
        let w = self.word(what)?;
        w.parse().map_err(|_| format!("{}: {what} `{w}` is not a valid number", self.op))
    }

    fn value(&mut self) -> Result<Value, String> {
        let op = self.op;
        match self.next("value")? {
            Tok::Str(b) => Ok(Value::Lit(b.clone())),
            Tok::Word(w) => {
                let bad =
                    || format!("{op}: expected a quoted value or gen(<len>,<seed>), found `{w}`");
                let inner =
                    w.strip_prefix("gen(").and_then(|r| r.strip_suffix(')')).ok_or_else(bad)?;
                let (len, seed) = inner.split_once(',').ok_or_else(bad)?;
                let len: u32 = len.parse().map_err(|_| bad())?;
                if len > GEN_LEN_MAX {
                    return Err(format!(
                        "{op}: gen({len},..) is larger than the maximum value size {GEN_LEN_MAX}"
                    ));
                }
                Ok(Value::Gen { len, seed: seed.parse().map_err(|_| bad())? })
            }
        }
    }

    fn sync(&mut self) -> Result<bool, String> {
        match self.toks.get(self.pos) {
            None => Ok(false),
            Some(Tok::Word(w)) if w == "sync" => {
                self.pos += 1;
                Ok(true)
            }
            Some(t) => {
                Err(format!("{}: expected `sync` or the end of the line, found {t}", self.op))
            }
        }
    }

    fn id(&mut self, prefix: char, what: &str) -> Result<u32, String> {
        let w = self.word(what)?;
        w.strip_prefix(prefix)
            .and_then(|n| n.parse().ok().filter(|_| n.bytes().all(|b| b.is_ascii_digit())))
            .ok_or_else(|| format!("{}: expected {what} `{prefix}<n>`, found `{w}`", self.op))
    }

    fn batch(&mut self) -> Result<BatchId, String> {
        self.id('b', "batch id").map(BatchId)
    }

    fn snapshot(&mut self) -> Result<SnapshotId, String> {
        self.id('s', "snapshot id").map(SnapshotId)
    }

    fn iter(&mut self) -> Result<IterId, String> {
        self.id('i', "iterator id").map(IterId)
    }

    fn opt_snapshot(&mut self) -> Result<Option<SnapshotId>, String> {
        if let Some(Tok::Word(w)) = self.toks.get(self.pos) {
            if w == "-" {
                self.pos += 1;
                return Ok(None);
            }
        }
        self.snapshot().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..12),
            "[a-c]{1,3}@[0-9]{0,3}".prop_map(|s| s.into_bytes()),
            Just(b"\"\\#-sync x".to_vec()),
        ]
    }

    fn opt_bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
        proptest::option::of(bytes())
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            bytes().prop_map(Value::Lit),
            (0..=GEN_LEN_MAX, any::<u64>()).prop_map(|(len, seed)| Value::Gen { len, seed }),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        let b = || any::<u32>().prop_map(BatchId);
        let s = || any::<u32>().prop_map(SnapshotId);
        let i = || any::<u32>().prop_map(IterId);
        prop_oneof![
            (bytes(), value(), any::<bool>()).prop_map(|(key, value, sync)| Op::Put {
                key,
                value,
                sync
            }),
            bytes().prop_map(|key| Op::Get { key }),
            (bytes(), any::<bool>()).prop_map(|(key, sync)| Op::Delete { key, sync }),
            (bytes(), any::<bool>()).prop_map(|(key, sync)| Op::SingleDelete { key, sync }),
            (bytes(), value(), any::<bool>()).prop_map(|(key, value, sync)| Op::Merge {
                key,
                value,
                sync
            }),
            (bytes(), bytes(), any::<bool>()).prop_map(|(start, end, sync)| Op::DeleteRange {
                start,
                end,
                sync
            }),
            b().prop_map(|id| Op::BatchNew { id }),
            (b(), bytes(), value()).prop_map(|(id, key, value)| Op::BatchPut { id, key, value }),
            (b(), bytes()).prop_map(|(id, key)| Op::BatchDelete { id, key }),
            (b(), bytes()).prop_map(|(id, key)| Op::BatchSingleDelete { id, key }),
            (b(), bytes(), value()).prop_map(|(id, key, value)| Op::BatchMerge { id, key, value }),
            (b(), bytes(), bytes()).prop_map(|(id, start, end)| Op::BatchDeleteRange {
                id,
                start,
                end
            }),
            (b(), any::<bool>()).prop_map(|(id, sync)| Op::BatchCommit { id, sync }),
            b().prop_map(|id| Op::BatchAbort { id }),
            b().prop_map(|id| Op::BatchClear { id }),
            proptest::collection::vec(b(), 1..4).prop_map(|ids| Op::BatchIngest { ids }),
            (b(), proptest::option::of(s()), bytes())
                .prop_map(|(id, snapshot, key)| Op::BatchGet { id, snapshot, key }),
            (b(), proptest::option::of(s()), opt_bytes(), opt_bytes(), 0..3usize).prop_map(
                |(id, snapshot, lower, upper, e)| Op::BatchScan {
                    id,
                    snapshot,
                    lower,
                    upper,
                    ends: ScanEnds::ALL[e]
                }
            ),
            (opt_bytes(), opt_bytes(), 0..3usize).prop_map(|(lower, upper, e)| Op::Scan {
                lower,
                upper,
                ends: ScanEnds::ALL[e]
            }),
            (proptest::option::of(s()), proptest::collection::vec(bytes(), 1..4))
                .prop_map(|(snapshot, keys)| Op::MultiGet { snapshot, keys }),
            s().prop_map(|id| Op::SnapshotNew { id }),
            (s(), bytes()).prop_map(|(id, key)| Op::SnapshotGet { id, key }),
            s().prop_map(|id| Op::SnapshotClose { id }),
            (i(), proptest::option::of(s()), opt_bytes(), opt_bytes(), proptest::option::of(b()))
                .prop_map(|(id, snapshot, lower, upper, batch)| Op::IterNew {
                    id,
                    snapshot,
                    lower,
                    upper,
                    batch
                }),
            (i(), proptest::option::of(s()), bytes())
                .prop_map(|(id, snapshot, prefix)| Op::IterNewPrefix { id, snapshot, prefix }),
            (i(), i()).prop_map(|(id, from)| Op::IterClone { id, from }),
            i().prop_map(|id| Op::IterRefresh { id }),
            i().prop_map(|id| Op::IterNextPrefix { id }),
            (i(), 0..4u8, bytes(), bytes()).prop_map(|(id, s, key, limit)| {
                let step = match s {
                    0 => LimitedStep::Next,
                    1 => LimitedStep::Prev,
                    2 => LimitedStep::SeekGe(key),
                    _ => LimitedStep::SeekLt(key),
                };
                Op::IterLimited { id, step, limit }
            }),
            i().prop_map(|id| Op::IterFirst { id }),
            i().prop_map(|id| Op::IterLast { id }),
            (i(), bytes()).prop_map(|(id, key)| Op::IterSeekGe { id, key }),
            (i(), bytes()).prop_map(|(id, key)| Op::IterSeekLt { id, key }),
            i().prop_map(|id| Op::IterNext { id }),
            i().prop_map(|id| Op::IterPrev { id }),
            (i(), opt_bytes(), opt_bytes()).prop_map(|(id, lower, upper)| Op::IterSetBounds {
                id,
                lower,
                upper
            }),
            i().prop_map(|id| Op::IterClose { id }),
            Just(Op::Flush),
            Just(Op::Checkpoint),
            (opt_bytes(), opt_bytes()).prop_map(|(start, end)| Op::CompactRange { start, end }),
            (opt_bytes(), opt_bytes())
                .prop_map(|(start, end)| Op::EstimateDiskUsage { start, end }),
            any::<bool>().prop_map(|sync| Op::FlushWal { sync }),
            any::<u32>().prop_map(|n| Op::BackgroundSteps { n }),
            Just(Op::Restart),
            Just(Op::Reconfigure),
            (prop::sample::select(CrashPolicy::ALL.to_vec()), proptest::option::of(any::<u32>()))
                .prop_map(|(policy, n)| Op::Crash {
                    policy,
                    at: n.map_or(CrashAt::Boundary, CrashAt::Within)
                }),
        ]
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(
            ops in proptest::collection::vec(op(), 0..40),
            seed in proptest::option::of(any::<u64>()),
            generator in proptest::option::of("[a-z0-9.]{1,8}"),
        ) {
            let file = OpsFile { generator, seed, ops };
            let text = print(&file);
            prop_assert_eq!(parse(&text), Ok(file));
        }

        /// Arbitrary text never panics the parser.
        #[test]
        fn parse_never_panics(text in "(# tumbler ops v1\n)?[ -~\n\\\\\"]{0,200}") {
            let _ = parse(&text);
        }
    }

    #[test]
    fn prints_readably() {
        let file = OpsFile {
            generator: Some("1".into()),
            seed: Some(42),
            ops: vec![
                Op::Put { key: b"a@3".to_vec(), value: Value::Lit(b"v1".to_vec()), sync: true },
                Op::Merge {
                    key: b"k\x00\xff\"\\".to_vec(),
                    value: Value::Gen { len: 1 << 20, seed: 7 },
                    sync: false,
                },
                Op::IterNew {
                    id: IterId(2),
                    snapshot: Some(SnapshotId(1)),
                    lower: Some(b"b@".to_vec()),
                    upper: None,
                    batch: None,
                },
                Op::IterSeekGe { id: IterId(2), key: b"b@".to_vec() },
                Op::CompactRange { start: None, end: Some(b"z".to_vec()) },
                Op::Crash { policy: CrashPolicy::Torn, at: CrashAt::Within(12) },
                Op::Crash { policy: CrashPolicy::Dirs, at: CrashAt::Boundary },
            ],
        };
        let want = "# tumbler ops v1\n# generator: 1\n# seed: 42\n\
                    put \"a@3\" \"v1\" sync\n\
                    merge \"k\\x00\\xff\\\"\\\\\" gen(1048576,7)\n\
                    iter.new i2 s1 \"b@\" -\n\
                    iter.seek_ge i2 \"b@\"\n\
                    compact_range - \"z\"\n\
                    crash torn within 12\n\
                    crash dirs\n";
        assert_eq!(print(&file), want);
        assert_eq!(parse(want), Ok(file));
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let text = "\n# tumbler ops v1\n\n# a note\nflush # why\n  restart  \n";
        let file = parse(text).unwrap();
        assert_eq!(file.ops, vec![Op::Flush, Op::Restart]);
        assert_eq!(file.seed, None);
    }

    fn parse_err(body: &str) -> ParseError {
        parse(&format!("{MAGIC}\n# seed: 1\n{body}\n")).expect_err(body)
    }

    #[test]
    fn malformed_lines_report_line_and_reason() {
        let cases: &[(&str, &str)] = &[
            ("frobnicate", "unknown op `frobnicate`"),
            ("put \"a\"", "put: missing value"),
            ("put a \"v\"", "put: expected a quoted string for key, found `a`"),
            ("put \"a\" \"v\" sync extra", "put: unexpected extra argument `extra`"),
            ("put \"a\" \"v\" nosync", "put: expected `sync` or the end of the line"),
            ("put \"a\" gen(5)", "expected a quoted value or gen(<len>,<seed>)"),
            ("put \"a\" gen(x,1)", "expected a quoted value or gen(<len>,<seed>)"),
            ("get \"abc", "unterminated string"),
            ("get \"a\\q\"", "unknown escape"),
            ("get \"a\\x4\"", "bad \\x escape"),
            ("get \"a\\xzz\"", "bad \\x escape"),
            ("get \"a\"\"b\"", "missing space after the string"),
            ("batch.put s1 \"k\" \"v\"", "expected batch id `b<n>`, found `s1`"),
            ("batch.commit b", "expected batch id `b<n>`"),
            ("batch.commit b+1", "expected batch id `b<n>`"),
            ("batch.ingest", "batch.ingest: missing batch id"),
            ("batch.ingest b1 s2", "expected batch id `b<n>`, found `s2`"),
            ("iter.new i1 x - -", "expected snapshot id `s<n>`"),
            ("iter.new i1 - -", "iter.new: missing upper bound"),
            ("background_steps -3", "step count `-3` is not a valid number"),
            ("crash melt", "unknown policy `melt`"),
            ("crash drop at 3", "expected `within <n>` or nothing"),
            ("crash drop within", "missing filesystem call offset"),
            ("\"put\"", "must start with an op name"),
        ];
        for (line, want) in cases {
            let e = parse_err(line);
            assert_eq!(e.line, 3, "{line}");
            assert!(e.message.contains(want), "{line}: got {:?}, want {want:?}", e.message);
        }
    }

    #[test]
    fn header_is_required_and_checked() {
        assert_eq!(parse("").unwrap_err().line, 1);
        let e = parse("\nflush\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("expected the header"), "{e}");
        let e = parse("# tumbler ops v1\n# seed: x\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "seed `x` is not a u64"));
        assert_eq!(e.to_string(), "ops file line 2: seed `x` is not a u64");
    }
}
