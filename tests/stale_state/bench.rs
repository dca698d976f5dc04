//! What every plan of `tests/stale_state.rs` shares: localkube, the
//! lagging proxy, the operator process behind it, the cluster's journal, the
//! client writing and the monitor asking every pod `ROLE`; restarts onto an
//! older view; the oracles; and the checks of what the operator decided.

#[allow(unused_imports)]
use super::*;

/// What one plan found, for the report.
pub(crate) struct Outcome {
    pub(crate) plan: String,
    pub(crate) took: Duration,
    pub(crate) note: String,
}

/// Prints, when a plan fails, how to run its kind's plans alone.
pub(crate) struct Reproduce {
    pub(crate) kind: &'static str,
    pub(crate) plan: String,
}

impl Drop for Reproduce {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "plan {} failed; reproduce: {KINDS_ENV}={} LOGBOOK_VALKEY_SERVER=<valkey-server> cargo test --test crash_lane -- --nocapture stale_state::",
                self.plan, self.kind
            );
        }
    }
}

/// Everything the plans share: localkube, the proxy, the operator behind
/// it, the cluster's journal, the client writing, the monitor of roles.
pub(crate) struct Bench {
    pub(crate) env: Env,
    pub(crate) proxy: LaggingProxy,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) workdir: tempfile::TempDir,
    pub(crate) operator: Option<OperatorProcess>,
    pub(crate) starts: usize,
    pub(crate) journal: JournalTail,
    pub(crate) probe: WriteProbe,
    pub(crate) monitor: ClaimMonitor,
    pub(crate) outcomes: Vec<Outcome>,
    /// The S3 server of the ValkeyBackup plans, once started.
    pub(crate) s3: Option<s3_server::S3Server>,
}

impl Bench {
    /// localkube, the proxy, an operator behind it, the cluster Ready with
    /// the sample user on it, a client writing and the monitor asking.
    pub(crate) async fn start() -> Bench {
        let env = Env::start_without_operator("stale").await;
        let proxy = LaggingProxy::start(&env.api_url()).await;
        let workdir = tempfile::Builder::new()
            .prefix("logbook-stale-")
            .tempdir()
            .unwrap();
        let kubeconfig = workdir.path().join("kubeconfig");
        env.write_kubeconfig_via(&kubeconfig, &proxy.url());
        let operator = OperatorProcess::start(&env, &kubeconfig, workdir.path(), "stale-1", None);
        create_user_sample(&env).await;
        env.apply_yaml(&Topology::Replication.yaml(NAME)).await;
        Topology::Replication
            .wait_ready(&env, NAME, Duration::from_secs(90))
            .await;
        let probe = Topology::Replication
            .start_probe(&env, NAME)
            .await
            .expect("a Replication cluster takes writes");
        let password = env.password(NAME).await;
        let monitor = ClaimMonitor::start(&env, Topology::Replication, NAME, &password);
        let journal = env.cm_journal_tail(&env.stream(NAME).await);
        let mut bench = Bench {
            env,
            proxy,
            kubeconfig,
            workdir,
            operator: Some(operator),
            starts: 1,
            journal,
            probe,
            monitor,
            outcomes: Vec::new(),
            s3: None,
        };
        bench
            .wait_auth(APP_SECRET, "app", SAMPLE_USER_PASSWORD, true)
            .await;
        bench.journal.catch_up().await;
        bench
    }

    pub(crate) async fn dump(&self) -> String {
        self.env.dump(NAME).await
    }

    /// Runs one plan: `body` returns what it found; then the oracles.
    pub(crate) fn begin(&self, kind: &'static str, plan: &str) -> (Reproduce, Instant) {
        eprintln!("---- plan {plan}");
        self.env.logs.append(&format!("==== plan {plan} ===="));
        (
            Reproduce {
                kind,
                plan: plan.to_owned(),
            },
            Instant::now(),
        )
    }

    pub(crate) fn end(&mut self, (reproduce, started): (Reproduce, Instant), note: String) {
        let took = started.elapsed();
        eprintln!("---- plan {} passed in {took:?}: {note}", reproduce.plan);
        self.outcomes.push(Outcome {
            plan: reproduce.plan.clone(),
            took,
            note,
        });
    }

    /// Stops the operator (it releases the Lease) and starts another
    /// instance; with `view`, the proxy serves that older view of its kind
    /// to the new instance. Returns the new instance's name.
    pub(crate) async fn restart(&mut self, view: Option<View>) -> String {
        if let Some(op) = self.operator.take() {
            op.stop(&self.env, NAME, false).await;
        }
        if let Some(view) = view {
            self.proxy.serve_stale(view);
        }
        self.starts += 1;
        let instance = format!("stale-{}", self.starts);
        self.operator = Some(OperatorProcess::start(
            &self.env,
            &self.kubeconfig,
            self.workdir.path(),
            &instance,
            None,
        ));
        instance
    }

    /// Waits until `instance` took the cluster's journal over; returns the
    /// seq of its `OperatorStarted`.
    pub(crate) async fn wait_takeover(&mut self, instance: &str, after: u64) -> u64 {
        let found = self
            .journal
            .wait_for(after, Duration::from_secs(20), |e| {
                matches!(&e.body, Event::OperatorStarted { instance: who, .. } if who == instance)
            })
            .await;
        match found {
            Some(e) => e.seq,
            None => panic!(
                "{instance} did not take the journal over\n{}",
                self.dump().await
            ),
        }
    }

    /// Waits [`WINDOW`]; returns the events journaled after `seq`.
    pub(crate) async fn window(&mut self, seq: u64) -> Vec<Envelope> {
        tokio::time::sleep(WINDOW).await;
        self.journal.catch_up().await;
        self.journal.after(seq).to_vec()
    }

    /// The current seq of the journal, read now.
    pub(crate) async fn seq(&mut self) -> u64 {
        self.journal.catch_up().await;
        self.journal.seq()
    }

    /// Waits until the journal holds an event after `seq` that `found`
    /// accepts; returns its seq. Panics with `what` after 60 s.
    pub(crate) async fn wait_event(
        &mut self,
        seq: u64,
        what: &str,
        found: impl Fn(&Event) -> bool,
    ) -> u64 {
        match self
            .journal
            .wait_for(seq, Duration::from_secs(60), |e| found(&e.body))
            .await
        {
            Some(e) => e.seq,
            None => panic!("no {what} journaled after seq {seq}\n{}", self.dump().await),
        }
    }

    /// The oracles: converged (Ready, published at journal seq `min_seq`
    /// or later, one primary by status, labels and `ROLE`), no
    /// acknowledged write lost, never two primaries, nothing in flight,
    /// the journal intact and auditing clean. Returns the primary.
    pub(crate) async fn check(&mut self, min_seq: u64) -> String {
        let topology = Topology::Replication;
        let env = &self.env;
        let deadline = Instant::now() + Duration::from_secs(60);
        let primary = loop {
            let vkc = env.vkc(NAME).await;
            let why = if !topology.ready(&vkc) {
                "not Ready on its generation".to_owned()
            } else if journal_seq(&vkc) < i64::try_from(min_seq).unwrap() {
                format!("status published at seq {} < {min_seq}", journal_seq(&vkc))
            } else {
                match topology.agree(env, NAME).await {
                    Ok(primaries) => break primaries[0].clone(),
                    Err(why) => why,
                }
            };
            assert!(
                Instant::now() < deadline,
                "not converged: {why}\n{}",
                self.dump().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        env.wait_acked_after(
            &self.probe,
            Instant::now(),
            "an acknowledged write after the plan",
        )
        .await;
        let log = self.probe.snapshot();
        let (missing, read_on) = topology.missing(env, NAME, &log).await;
        assert!(
            missing.is_empty(),
            "{} of {} acknowledged writes lost on {read_on}: {:?}\n{}",
            missing.len(),
            log.acked_keys().len(),
            &missing[..missing.len().min(20)],
            self.dump().await
        );
        let conflicts = self.monitor.take();
        assert!(
            conflicts.is_empty(),
            "two primaries at once: {conflicts:?}\n{}",
            self.dump().await
        );
        if let Err(why) = env.cm_journal_at_rest(self.journal.stream()).await {
            panic!("{why}\n{}", self.dump().await);
        }
        self.journal.catch_up().await;
        primary
    }

    /// Whether user `user` authenticates with `password` on every data pod.
    pub(crate) async fn auth_everywhere(&self, user: &str, password: &str) -> bool {
        for pod in self.env.pods(NAME).await {
            let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
                return false;
            };
            if !auth_as(&format!("{ip}:{PORT}"), user, password).await {
                return false;
            }
        }
        true
    }

    /// Whether user `user` authenticates with `password` on some data pod.
    pub(crate) async fn auth_anywhere(&self, user: &str, password: &str) -> bool {
        for pod in self.env.pods(NAME).await {
            if let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone())
                && auth_as(&format!("{ip}:{PORT}"), user, password).await
            {
                return true;
            }
        }
        false
    }

    /// Waits until `user` authenticates with `password` on every pod
    /// (`works`), or on none.
    pub(crate) async fn wait_auth(&self, secret: &str, user: &str, password: &str, works: bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = if works {
                self.auth_everywhere(user, password).await
            } else {
                !self.auth_anywhere(user, password).await
            };
            if now {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "user {user} (Secret {secret}) {} its password on every pod\n{}",
                if works {
                    "does not take"
                } else {
                    "still takes"
                },
                self.dump().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the cluster is whole again after a planned change and
    /// drops the monitor's moments of a planned switchover.
    pub(crate) async fn settle_handover(&mut self) {
        Topology::Replication
            .wait_ready(&self.env, NAME, Duration::from_secs(90))
            .await;
        let planned = self.monitor.take();
        if !planned.is_empty() {
            eprintln!("     (a planned switchover's moment of two masters: {planned:?})");
        }
    }
}

/// Whether `addr` takes `AUTH user password`.
pub(crate) async fn auth_as(addr: &str, user: &str, password: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    let Ok(client) = redis::Client::open(redis::ConnectionAddr::Tcp(
        host.to_owned(),
        port.parse().unwrap_or(PORT),
    )) else {
        return false;
    };
    let limit = Duration::from_secs(1);
    let Ok(Ok(mut con)) =
        tokio::time::timeout(limit, client.get_multiplexed_async_connection()).await
    else {
        return false;
    };
    matches!(
        tokio::time::timeout(
            limit,
            redis::cmd("AUTH")
                .arg(user)
                .arg(password)
                .query_async::<()>(&mut con)
        )
        .await,
        Ok(Ok(()))
    )
}

/// The names of the intents decided in `events`.
pub(crate) fn decisions(events: &[Envelope]) -> Vec<String> {
    decided_names(events)
}

/// The intents decided in `events`, whole.
pub(crate) fn intents(events: &[Envelope]) -> Vec<Intent> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents, .. } => Some(intents.iter().map(|p| p.intent.clone())),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Fails unless no intent was decided in `events` (the window of a stale
/// plan: nothing changed but the operator's view, so any decision there
/// was taken on the older view).
pub(crate) async fn assert_nothing_decided(bench: &Bench, events: &[Envelope], plan: &str) {
    let decided = decisions(events);
    assert!(
        decided.is_empty(),
        "{plan}: decided {decided:?} on a stale view\n{}\n{}",
        summary(events),
        bench.dump().await
    );
}

/// Fails when one intent was decided more than twice in `events` (the
/// same intent with the same arguments): an operator that acts, then reads
/// a view older than its own act and acts again, loops.
pub(crate) async fn assert_no_repeat(bench: &Bench, events: &[Envelope], plan: &str) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for intent in intents(events) {
        *counts.entry(format!("{intent:?}")).or_default() += 1;
    }
    let repeated: Vec<(String, usize)> = counts.into_iter().filter(|(_, n)| *n > 2).collect();
    assert!(
        repeated.is_empty(),
        "{plan}: decided again and again on a view older than its own acts: {repeated:?}\n{}\n{}",
        summary(events),
        bench.dump().await
    );
}

/// One line per event, for failure messages.
pub(crate) fn summary(events: &[Envelope]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "  {} {} {}",
                e.seq,
                e.body.kind(),
                logbook_replay::describe::summary(&e.body)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The cluster's pods by name with their uids.
pub(crate) async fn uids(env: &Env) -> BTreeMap<String, String> {
    env.pods(NAME)
        .await
        .into_iter()
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect()
}

/// `spec.podDisruptionBudget.maxUnavailable` toggled between 1 and 2: a
/// new generation that changes the PDB and nothing the pods run.
pub(crate) async fn toggle_budget(env: &Env) -> i64 {
    let vkc = env.vkc(NAME).await;
    let now = vkc.spec.pod_disruption_budget.max_unavailable;
    let next = if now == 1 { 2 } else { 1 };
    let vkc = env
        .patch(
            NAME,
            serde_json::json!({"spec": {"podDisruptionBudget": {"maxUnavailable": next}}}),
        )
        .await;
    vkc.metadata.generation.unwrap()
}
