//! The engines under test behind one small trait, each opened with matching options: 64 MiB
//! memtable, 64 MiB block cache, 10-bit bloom filters, LZ4, no fsync unless a write asks.

use std::path::Path;
use std::sync::Arc;

/// Bytes of memtable and of block cache every engine gets.
pub const MEMTABLE: usize = 64 << 20;
pub const CACHE: usize = 64 << 20;

pub trait Engine: Send + Sync {
    fn put(&self, key: &[u8], value: &[u8], sync: bool);
    fn put_batch(&self, pairs: &[(Vec<u8>, &[u8])]);
    fn delete(&self, key: &[u8]);
    /// The value's length, or `None` when absent (the value is read, not just probed).
    fn get(&self, key: &[u8]) -> Option<usize>;
    /// Visits every pair in key order (or reversed); returns how many.
    fn scan(&self, reverse: bool) -> u64;
    /// Seeks to `key` and reads up to `n` pairs from there; returns how many.
    fn seek_next(&self, key: &[u8], n: usize) -> usize;
    /// Writes the memtable out.
    fn flush(&self);
    /// Compacts everything down as far as it goes.
    fn compact(&self);
}

pub fn open(name: &str, dir: &Path) -> Arc<dyn Engine> {
    match name {
        "cobble" => Arc::new(Cobble::open(dir)),
        "fjall" => Arc::new(Fjall::open(dir)),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Arc::new(Rocks::open(dir)),
        other => panic!("unknown engine {other} (is the `rocksdb` feature on?)"),
    }
}

/// The engines this build can run, in table order.
pub fn available() -> Vec<&'static str> {
    let mut v = vec!["cobble", "fjall"];
    if cfg!(feature = "rocksdb") {
        v.push("rocksdb");
    }
    v
}

pub struct Cobble(cobble::Db);

impl Cobble {
    fn open(dir: &Path) -> Cobble {
        let opts = cobble::Options {
            memtable_size: MEMTABLE,
            cache_size: CACHE,
            bloom_bits_per_key: 10,
            compression: cobble::Compression::Lz4,
            ..cobble::Options::default()
        };
        Cobble(cobble::Db::open(opts, dir).expect("open cobble"))
    }
}

impl Engine for Cobble {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) {
        self.0.put(key, value, &cobble::WriteOptions { sync }).expect("put");
    }
    fn put_batch(&self, pairs: &[(Vec<u8>, &[u8])]) {
        let mut b = cobble::WriteBatch::new();
        for (k, v) in pairs {
            b.put(k, v);
        }
        self.0.write(b, &cobble::WriteOptions::default()).expect("write");
    }
    fn delete(&self, key: &[u8]) {
        self.0.delete(key, &cobble::WriteOptions::default()).expect("delete");
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        // Pinned, as the peers read: RocksDB through `get_pinned`, fjall through its `Slice`.
        self.0.get_pinned(&cobble::ReadOptions::default(), key).expect("get").map(|v| v.len())
    }
    fn scan(&self, reverse: bool) -> u64 {
        let mut it = self.0.iter(&cobble::ReadOptions::default()).expect("iter");
        let mut n = 0u64;
        let mut ok = if reverse { it.last() } else { it.first() }.expect("position");
        while ok {
            n += (it.key().len() + it.value().len() > 0) as u64;
            ok = if reverse { it.prev() } else { it.next() }.expect("step");
        }
        n
    }
    fn seek_next(&self, key: &[u8], n: usize) -> usize {
        let mut it = self.0.iter(&cobble::ReadOptions::default()).expect("iter");
        let mut ok = it.seek_ge(key).expect("seek");
        let mut got = 0;
        while ok && got < n {
            got += usize::from(!it.value().is_empty() || !it.key().is_empty());
            ok = it.next().expect("next");
        }
        got
    }
    fn flush(&self) {
        self.0.flush().expect("flush");
    }
    fn compact(&self) {
        self.0.compact_range(None, None).expect("compact");
    }
}

pub struct Fjall {
    db: fjall::Database,
    ks: fjall::Keyspace,
}

impl Fjall {
    fn open(dir: &Path) -> Fjall {
        let db = fjall::Database::builder(dir).cache_size(CACHE as u64).open().expect("open fjall");
        let ks = db
            .keyspace("bench", || {
                // fjall's defaults leave L0 and L1 uncompressed and give L0 a 1e-4 false
                // positive rate (about 20 bits per key); matched here to Cobble's options.
                fjall::KeyspaceCreateOptions::default()
                    .max_memtable_size(MEMTABLE as u64)
                    .data_block_compression_policy(fjall::config::CompressionPolicy::all(
                        fjall::CompressionType::Lz4,
                    ))
                    .filter_policy(fjall::config::FilterPolicy::all(
                        fjall::config::FilterPolicyEntry::Bloom(
                            fjall::config::BloomConstructionPolicy::BitsPerKey(10.0),
                        ),
                    ))
            })
            .expect("keyspace");
        Fjall { db, ks }
    }
}

impl Engine for Fjall {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) {
        self.ks.insert(key, value).expect("insert");
        if sync {
            self.db.persist(fjall::PersistMode::SyncData).expect("persist");
        }
    }
    fn put_batch(&self, pairs: &[(Vec<u8>, &[u8])]) {
        let mut b = self.db.batch();
        for (k, v) in pairs {
            b.insert(&self.ks, k.as_slice(), *v);
        }
        b.commit().expect("commit");
    }
    fn delete(&self, key: &[u8]) {
        self.ks.remove(key).expect("remove");
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        self.ks.get(key).expect("get").map(|v| v.len())
    }
    fn scan(&self, reverse: bool) -> u64 {
        let visit = |g: fjall::Guard| {
            let (k, v) = g.into_inner().expect("pair");
            (k.len() + v.len() > 0) as u64
        };
        if reverse {
            self.ks.iter().rev().map(visit).sum()
        } else {
            self.ks.iter().map(visit).sum()
        }
    }
    fn seek_next(&self, key: &[u8], n: usize) -> usize {
        self.ks
            .range(key..)
            .take(n)
            .map(|g| {
                let (k, v) = g.into_inner().expect("pair");
                usize::from(k.len() + v.len() > 0)
            })
            .sum()
    }
    fn flush(&self) {
        self.ks.rotate_memtable_and_wait().expect("flush");
    }
    fn compact(&self) {
        self.ks.major_compact().expect("compact");
    }
}

#[cfg(feature = "rocksdb")]
pub struct Rocks(rocksdb::DB);

#[cfg(feature = "rocksdb")]
impl Rocks {
    fn open(dir: &Path) -> Rocks {
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_cache(&rocksdb::Cache::new_lru_cache(CACHE));
        table.set_bloom_filter(10.0, false);
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.set_write_buffer_size(MEMTABLE);
        o.set_compression_type(rocksdb::DBCompressionType::Lz4);
        o.set_max_background_jobs(2);
        o.set_block_based_table_factory(&table);
        Rocks(rocksdb::DB::open(&o, dir).expect("open rocksdb"))
    }
}

#[cfg(feature = "rocksdb")]
impl Engine for Rocks {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) {
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(sync);
        self.0.put_opt(key, value, &wo).expect("put");
    }
    fn put_batch(&self, pairs: &[(Vec<u8>, &[u8])]) {
        let mut b = rocksdb::WriteBatch::default();
        for (k, v) in pairs {
            b.put(k, v);
        }
        self.0.write(b).expect("write");
    }
    fn delete(&self, key: &[u8]) {
        self.0.delete(key).expect("delete");
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        self.0.get_pinned(key).expect("get").map(|v| v.len())
    }
    fn scan(&self, reverse: bool) -> u64 {
        let mut it = self.0.raw_iterator();
        if reverse {
            it.seek_to_last();
        } else {
            it.seek_to_first();
        }
        let mut n = 0u64;
        while it.valid() {
            n += (it.key().map_or(0, <[u8]>::len) + it.value().map_or(0, <[u8]>::len) > 0) as u64;
            if reverse {
                it.prev();
            } else {
                it.next();
            }
        }
        it.status().expect("scan");
        n
    }
    fn seek_next(&self, key: &[u8], n: usize) -> usize {
        let mut it = self.0.raw_iterator();
        it.seek(key);
        let mut got = 0;
        while it.valid() && got < n {
            got += usize::from(it.value().is_some());
            it.next();
        }
        got
    }
    fn flush(&self) {
        self.0.flush().expect("flush");
    }
    fn compact(&self) {
        self.0.compact_range(None::<&[u8]>, None::<&[u8]>);
    }
}
