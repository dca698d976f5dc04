//! A client with an application's retry policy, and switchover requests.
#[allow(unused_imports)]
use super::*;

/// What a [`RetryingWriter`] did.
#[derive(Debug, Default, Clone)]
pub struct RetryLog {
    /// Keys written and acknowledged (`WAIT 1` ≥ 1), in order.
    pub acked: Vec<u64>,
    /// Keys given up on after [`RetryingWriter`]'s deadline.
    pub given_up: Vec<u64>,
    /// Failed attempts (each one retried).
    pub retries: usize,
    /// The longest time one key took from its first attempt to its
    /// acknowledgement.
    pub longest: Duration,
    /// The last few errors, for failure messages.
    pub errors: VecDeque<String>,
}

/// A client writing `<prefix>:<n>` through one address as an application
/// would with a retry policy: each key is retried (reconnecting) until a
/// `SET` and `WAIT 1 1000` acknowledge it, for at most `give_up` per key.
pub struct RetryingWriter {
    log: Arc<Mutex<RetryLog>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RetryingWriter {
    /// Starts writing a key every 10 ms.
    pub fn start(addr: &str, password: &str, prefix: &str, give_up: Duration) -> Self {
        let log = Arc::new(Mutex::new(RetryLog::default()));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (addr, password, prefix) = (addr.to_owned(), password.to_owned(), prefix.to_owned());
        let shared = log.clone();
        let task = tokio::spawn(async move {
            let mut con: Option<MultiplexedConnection> = None;
            let mut key = 0u64;
            loop {
                if *stopped.borrow() {
                    return;
                }
                let first = Instant::now();
                loop {
                    match write_once(&mut con, &addr, &password, &format!("{prefix}:{key}"), key)
                        .await
                    {
                        Ok(()) => {
                            let mut log = shared.lock().unwrap();
                            log.acked.push(key);
                            log.longest = log.longest.max(first.elapsed());
                            break;
                        }
                        Err(err) => {
                            con = None;
                            let mut log = shared.lock().unwrap();
                            log.retries += 1;
                            if log.errors.len() >= 20 {
                                log.errors.pop_front();
                            }
                            log.errors.push_back(format!("key {key}: {err}"));
                            if first.elapsed() > give_up {
                                log.given_up.push(key);
                                break;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                key += 1;
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        });
        Self { log, stop, task }
    }

    /// Keys acknowledged so far.
    pub fn acked_count(&self) -> usize {
        self.log.lock().unwrap().acked.len()
    }

    /// Stops after the key in flight and returns the log.
    pub async fn stop(self) -> RetryLog {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
        self.log.lock().unwrap().clone()
    }
}

async fn write_once(
    con: &mut Option<MultiplexedConnection>,
    addr: &str,
    password: &str,
    key: &str,
    value: u64,
) -> Result<(), String> {
    let limit = Duration::from_millis(1500);
    if con.is_none() {
        let (host, port) = addr.rsplit_once(':').unwrap();
        let client = logbook_bench::client(host, port.parse().unwrap()).unwrap();
        let mut c = tokio::time::timeout(limit, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| format!("connect: {e}"))?;
        tokio::time::timeout(
            limit,
            redis::cmd("AUTH").arg(password).query_async::<()>(&mut c),
        )
        .await
        .map_err(|_| "AUTH timed out".to_owned())?
        .map_err(|e| format!("AUTH: {e}"))?;
        *con = Some(c);
    }
    let c = con.as_mut().unwrap();
    tokio::time::timeout(
        limit,
        redis::cmd("SET").arg(key).arg(value).query_async::<()>(c),
    )
    .await
    .map_err(|_| "SET timed out".to_owned())?
    .map_err(|e| format!("SET: {e}"))?;
    let replicas: i64 =
        tokio::time::timeout(limit, redis::cmd("WAIT").arg(1).arg(1000).query_async(c))
            .await
            .map_err(|_| "WAIT timed out".to_owned())?
            .map_err(|e| format!("WAIT: {e}"))?;
    if replicas < 1 {
        return Err("WAIT: no replica acknowledged".to_owned());
    }
    Ok(())
}

/// Sets the switchover annotation on the cluster.
pub async fn request_switchover(env: &Env, name: &str, to: &str) {
    env.patch(
        name,
        serde_json::json!({"metadata": {"annotations": {"valkey.logbook.dev/switchover-to": to}}}),
    )
    .await;
}

/// Whether the switchover annotation is gone.
pub fn switchover_cleared(vkc: &ValkeyCluster) -> bool {
    !vkc.annotations()
        .contains_key("valkey.logbook.dev/switchover-to")
}
