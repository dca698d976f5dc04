//! The runtime's decisions and their execution: the intents found in
//! flight at a takeover resolved, `decide` run on the projection, each
//! decision journaled before it runs (write-ahead), its outcome journaled
//! after, and the Events that announce them.

use super::*;

impl ClusterRuntime {
    /// Resolves the intents found without an outcome at the takeover, now
    /// that the world was observed again, and decides nothing itself: each
    /// is found done — the observations show its effect
    /// ([`already_done`]), journaled with the fact a promotion found done
    /// establishes ([`promotion_found_done`]) — or else abandoned. What
    /// the cluster still needs is then decided afresh by the decide loop,
    /// as a `Decided` like any other, which `replay audit` recomputes:
    /// carrying an intent out under its old id would be a decision of this
    /// instance that the journal never shows as one.
    ///
    /// All are judged on the projection as the probe round left it, before
    /// any resolution is folded, as the audit judges them again (its
    /// `takeover-resolution` check). A slot move whose job still runs on
    /// its source is not started twice for it: the probe round observed
    /// the job, and `decide` waits for it under a `MoveSlots` naming
    /// exactly its slots, which the executor adopts; a promotion not found
    /// done is decided again on the offsets observed since.
    async fn resolve_in_flight(&mut self) -> Result<(), OperatorError> {
        let found: Vec<PlannedIntent> = self
            .state
            .in_flight
            .values()
            .map(|f| f.planned.clone())
            .collect();
        if found.is_empty() {
            return Ok(());
        }
        let (mut found_done, mut abandoned) = (0_usize, 0_usize);
        let mut events: Vec<Event> = Vec::new();
        for p in found {
            match already_done(&self.state, &p.intent) {
                Some(evidence) => {
                    found_done += 1;
                    events.extend(promotion_found_done(&self.state, &p.intent));
                    events.push(Event::IntentSucceeded {
                        intent_id: p.intent_id,
                        detail: format!("found done when the journal was taken over: {evidence}"),
                    });
                }
                None => {
                    abandoned += 1;
                    events.push(Event::IntentAbandoned {
                        intent_id: p.intent_id,
                        reason: format!(
                            "found without an outcome when the journal was taken over, and nothing observed shows {} done; what the observed cluster still needs is decided afresh",
                            describe_intent(&p.intent)
                        ),
                    });
                }
            }
        }
        tracing::info!(
            seq = self.state.last_seq,
            found_done,
            abandoned,
            "resolving the intents left in flight; deciding afresh"
        );
        self.record_now(events, None).await?;
        Ok(())
    }

    /// Time, in the journal: when the wall clock has passed the next
    /// moment `decide` named ([`crate::decide::next_deadline`]),
    /// `DeadlinePassed` is journaled, so that `now` — the journal's last
    /// moment, which stands still on an idle cluster — reaches it. Then
    /// the facts the clock makes, read at that journaled moment: rotation
    /// windows that closed, the backup schedule's fire. One mechanism for
    /// every rule that reads time; nothing is appended before a deadline.
    async fn pass_deadline(&mut self) -> Result<(), OperatorError> {
        if let Some(deadline) = crate::decide::next_deadline(&self.state)
            && deadline <= logbook_journal::Timestamp::now()
        {
            self.record_now(vec![Event::DeadlinePassed { deadline }], None)
                .await?;
        }
        let now = self.state.last_at;
        let mut facts: Vec<Event> = self
            .state
            .users
            .windows_due(now)
            .into_iter()
            .map(|username| Event::RotationWindowClosed { username })
            .collect();
        facts.extend(crate::observe::backup::backup_due(
            &self.state,
            &self.meta.name,
            now,
        ));
        if !facts.is_empty() {
            self.record_now(facts, None).await?;
        }
        Ok(())
    }

    /// How long until the next deadline (none: no rule waits on time).
    pub fn until_next_deadline(&self) -> Option<Duration> {
        let next = crate::decide::next_deadline(&self.state)?;
        let left = next
            .as_micros()
            .saturating_sub(logbook_journal::Timestamp::now().as_micros());
        Some(Duration::from_micros(u64::try_from(left).unwrap_or(0)))
    }

    /// How long until the back-off after a failure ends (none: not
    /// backing off). The reconcile wakes then: nothing else may (a new
    /// cluster whose first decision failed has no pod to probe).
    pub fn until_backoff_ends(&self) -> Option<Duration> {
        self.backoff
            .map(|(until, _)| until.saturating_duration_since(Instant::now()))
    }

    fn back_off(&mut self) {
        let wait = self
            .backoff
            .map_or(FIRST_BACKOFF, |(_, d)| (d * 2).min(MAX_BACKOFF));
        self.backoff = Some((Instant::now() + wait, wait));
    }

    /// Decides and acts until `decide` asks for nothing (or a failure
    /// backs off). Each decision is journaled before any of its intents
    /// runs; each intent's facts and outcome are journaled as it ends.
    ///
    /// # Errors
    /// Journal append errors (the intents' own failures are outcomes).
    pub async fn act(&mut self) -> Result<(), OperatorError> {
        let result = self.decide_and_act().await;
        self.orphans_found();
        result
    }

    /// Intents are carried out only here, under the runtime's lock, and
    /// each ends with its outcome journaled: an intent still in flight
    /// when acting stops was cut (the lead was lost between its decision
    /// and its outcome, or its outcome could not be staged), and nothing
    /// will ever carry it out. `decide` asks for nothing while intents are
    /// in flight, so unless it is resolved the cluster waits forever; and
    /// a lead regained at the same epoch (a renewal that starved, then
    /// came back) is not a new term, so [`Self::sync_leadership`] would
    /// not resolve it. The takeover is forgotten instead: the next
    /// [`Self::sync_leadership`] takes the journal over again, journals
    /// `OperatorStarted`, and resolves what was cut as after a restart.
    ///
    /// The same when the lead is lost (seen here or by
    /// [`Self::sync_leadership`]) with nothing in flight but a decision
    /// due, `decide` asking for something no `Decided` records: the
    /// journal must show why nothing was decided there, or `replay
    /// audit` (its `missed-decision` check) could not tell the cut from a
    /// decision the runtime failed to take.
    pub(super) fn orphans_found(&mut self) {
        if self.resolve_pending || self.taken_over.is_none() {
            return;
        }
        let cut = if self.state.in_flight.is_empty() {
            !self.leading() && self.decision_due()
        } else {
            true
        };
        if !cut {
            return;
        }
        tracing::warn!(
            seq = self.state.last_seq,
            in_flight = self.state.in_flight.len(),
            leading = self.leading(),
            "acting stopped with intents in flight or a decision due; the next takeover resolves it"
        );
        self.taken_over = None;
    }

    /// Whether `decide` asks for something on the projection now.
    fn decision_due(&self) -> bool {
        let policy = self.state.policy.clone().unwrap_or_default();
        !decide(&self.state, self.state.last_at, &policy).is_empty()
    }

    async fn decide_and_act(&mut self) -> Result<(), OperatorError> {
        if !self.leading()
            || self
                .backoff
                .is_some_and(|(until, _)| Instant::now() < until)
        {
            return Ok(());
        }
        // Fresh observations of every pod since the takeover, or none to
        // wait for: no pod to observe (a new cluster whose first decision
        // was in flight: no pods and no password yet, so the prober never
        // completes a round and the cluster would wait forever), or the
        // cluster is deleted: its pods are not probed any more (the
        // prober stops with the cluster), and all that is left to decide
        // is the deletion, which reads no pod: a successor taking over a
        // deletion cut short must not wait for a probe round.
        let fresh = self.probed || self.state.pods.is_empty() || self.state.deleted;
        if self.resolve_pending {
            if !fresh {
                return Ok(());
            }
            self.resolve_pending = false;
            self.resolve_in_flight().await?;
        }
        // Nothing else is decided on the journal's view of the data plane
        // either until a probe round has renewed it: it is as old as the
        // last instance's last round, and what the servers or the
        // Sentinels did since (a failover of their own) would meet a
        // fresh view of the pods from the API. Unless no round can run
        // yet (no password or CA read: what is decided then reads no
        // server).
        if !fresh && self.prober_can_run() {
            return Ok(());
        }
        self.pass_deadline().await?;
        for _ in 0..MAX_STEPS {
            let policy = self.state.policy.clone().unwrap_or_default();
            let decisions = decide(&self.state, self.state.last_at, &policy);
            if decisions.is_empty() {
                return Ok(());
            }
            let planned: Vec<PlannedIntent> = decisions
                .into_iter()
                .map(|d| PlannedIntent {
                    intent_id: Uuid::now_v7(),
                    intent: d.intent,
                    reason: d.reason,
                })
                .collect();
            let decided = match self
                .record_now(
                    vec![Event::Decided {
                        intents: planned.clone(),
                    }],
                    None,
                )
                .await
            {
                Ok(decided) => decided,
                Err(err) => return self.undurable_decision(&planned, err).await,
            };
            let cause = decided.first().map(|e| e.id);
            self.announce_decision(&planned).await;
            if !self.execute_all(&planned, cause).await? {
                self.back_off();
                return Ok(());
            }
            self.backoff = None;
        }
        tracing::warn!(
            seq = self.state.last_seq,
            "still deciding after {MAX_STEPS} steps; continuing at the next trigger"
        );
        Ok(())
    }

    /// A decision that could not be made durable is not acted on: unless
    /// this runtime was fenced (then nothing more is written), its intents
    /// are staged as abandoned beside it, so that whenever the batch is
    /// committed the journal shows why nothing followed.
    async fn undurable_decision(
        &mut self,
        planned: &[PlannedIntent],
        err: OperatorError,
    ) -> Result<(), OperatorError> {
        if self.fenced.is_some() {
            return Err(err);
        }
        tracing::warn!(seq = self.state.last_seq, %err, "decision not durable; not acting on it");
        let abandoned = planned
            .iter()
            .map(|p| Event::IntentAbandoned {
                intent_id: p.intent_id,
                reason: format!("the decision could not be written to the journal: {err}"),
            })
            .collect();
        if self.stage(abandoned, None, false)?.is_empty() {
            // Not leading when the decision was to be journaled, so
            // nothing was: the journal would show a decision due and none
            // taken. `orphans_found` forgets the takeover only if the lead
            // is still lost when it looks; a starved renewal regains it at
            // the same epoch within milliseconds (seen under CI load), and
            // the silence went unexplained (`replay audit`'s
            // missed-decision, a Redis 7 reshard at seq 314: its role
            // labels decided by replay, not by the runtime, whose next
            // decision came after the pod it concerned was gone). Forget
            // it here: the next sync journals a takeover, as after a
            // restart.
            self.taken_over = None;
        }
        self.back_off();
        Ok(())
    }

    /// Runs `planned` in order; after a failure the rest are abandoned.
    /// Returns whether all succeeded.
    async fn execute_all(
        &mut self,
        planned: &[PlannedIntent],
        cause: Option<Uuid>,
    ) -> Result<bool, OperatorError> {
        let spec = match self.state.desired_spec() {
            Some(Ok(spec)) => spec,
            // A cluster deleted before any spec of it was accepted still
            // has its objects deleted; that needs no spec.
            _ if planned
                .iter()
                .all(|p| matches!(p.intent, Intent::DeleteOwnedObjects { .. })) =>
            {
                logbook_crds::ValkeyClusterSpec::default()
            }
            _ => return Ok(false),
        };
        if !planned.is_empty()
            && planned
                .iter()
                .all(|p| matches!(p.intent, Intent::MoveSlots { .. }))
        {
            return self.execute_moves(planned, cause, &spec).await;
        }
        let mut failed: Option<String> = None;
        for p in planned {
            if let Some(why) = &failed {
                self.record_now(
                    vec![Event::IntentAbandoned {
                        intent_id: p.intent_id,
                        reason: format!("an earlier intent of the same decision failed: {why}"),
                    }],
                    cause,
                )
                .await?;
                continue;
            }
            if !self.leading() {
                // Lost the lease (or fenced) mid-decision: act no further;
                // the next leader resolves what is left in flight.
                return Ok(false);
            }
            let target = Target {
                meta: &self.meta,
                spec: &spec,
                state: &self.state,
                interrupt: None,
            };
            let result = crate::effects::within(
                p.intent.name(),
                p.intent_id,
                self.executor.execute(&p.intent, target),
            )
            .await;
            self.count_actions(1);
            match result {
                Ok(done) => self.succeeded(p, done, cause).await?,
                Err(err) => {
                    let message = err.to_string();
                    self.failed(p, err, cause).await?;
                    failed = Some(message);
                }
            }
        }
        Ok(failed.is_none())
    }

    /// Slot moves of one decision run at once: each source sends its
    /// own job, and a reshard takes as long as its longest move, not the
    /// sum of them. Each outcome is journaled as for any intent; one
    /// failing does not stop the others (they touch other nodes' slots).
    ///
    /// Moves can take minutes, and while they run the runtime records
    /// nothing and decides nothing; so every pod is probed beside them,
    /// and when a round shows what must be acted on at once (a pod that
    /// stops answering, a primary restarted in place: its replica would
    /// resync from it and lose what it holds once the primary's sync
    /// delay is over) the moves hand back, their jobs left running, a
    /// fresh round is journaled, and the next decision (a failover goes
    /// before resharding) is taken at once; the jobs are followed again
    /// by the decision after.
    async fn execute_moves(
        &mut self,
        planned: &[PlannedIntent],
        cause: Option<Uuid>,
        spec: &logbook_crds::ValkeyClusterSpec,
    ) -> Result<bool, OperatorError> {
        if !self.leading() {
            return Ok(false);
        }
        let pods: Vec<(String, Option<std::net::SocketAddr>)> = self
            .state
            .pods
            .iter()
            .map(|(name, view)| {
                (
                    name.clone(),
                    view.ip.as_deref().and_then(crate::resources::valkey_addr),
                )
            })
            .collect();
        let cap = crate::operator::prober::failure_cap(self);
        let (interrupt, interrupted) = watch::channel(None::<String>);
        let (results, alarm) = {
            let target = Target {
                meta: &self.meta,
                spec,
                state: &self.state,
                interrupt: Some(&interrupted),
            };
            let executor = &self.executor;
            let moves = futures::future::join_all(planned.iter().map(|p| {
                crate::effects::within(
                    p.intent.name(),
                    p.intent_id,
                    executor.execute(&p.intent, target),
                )
            }));
            futures::pin_mut!(moves);
            let watch = crate::operator::cluster_prober::watch_for_alarm(
                &self.probe_client,
                &pods,
                &self.state,
                cap,
            );
            tokio::select! {
                results = &mut moves => (results, None),
                why = watch => {
                    tracing::info!(seq = self.state.last_seq, why = %why, "slot moves hand back");
                    interrupt.send_replace(Some(why.clone()));
                    (moves.await, Some(why))
                }
            }
        };
        self.count_actions(u64::try_from(planned.len()).unwrap_or(u64::MAX));
        // Each move read its two ends when it ended; the ends of moves
        // that ran at once are read again now, once, and those readings
        // go first: folded in decision order, an earlier reading of a
        // source that gave to several targets could otherwise stand last.
        let mut ends: Vec<String> = Vec::new();
        for p in planned {
            if let Intent::MoveSlots { from, to, .. } = &p.intent {
                for pod in [from, to] {
                    if !ends.contains(pod) {
                        ends.push(pod.clone());
                    }
                }
            }
        }
        let mut results = results;
        let own = |e: &Event| !matches!(e, Event::ClusterNodeObserved { .. });
        for result in &mut results {
            match result {
                Ok(done) => done.events.retain(own),
                Err(err) => {
                    let mut facts = err.take_facts();
                    facts.retain(own);
                    let error = std::mem::replace(err, ActError::NotYet(String::new()));
                    *err = error.with_facts(facts);
                }
            }
        }
        let fresh = if alarm.is_some() {
            // What made the moves hand back, journaled now so that the
            // next decision sees it: a whole round, offsets included (a
            // failover compares the primary's and its replicas'). With the
            // ends' reports, before the outcomes: folded while the moves
            // are still in flight, a source's report of slots given away
            // before its target's of slots taken is a move under way, not
            // slots nobody owns.
            let results =
                crate::operator::cluster_prober::probe_pods(&self.probe_client, &pods).await;
            let cap = crate::operator::prober::failure_cap(self);
            crate::operator::cluster_prober::round_events(
                &self.state,
                &results,
                cap,
                true,
                &std::collections::BTreeMap::new(),
            )
        } else {
            let target = Target {
                meta: &self.meta,
                spec,
                state: &self.state,
                interrupt: None,
            };
            self.executor.reports_of(target, &ends).await
        };
        self.record_now(fresh, cause).await?;
        let mut all = true;
        for (p, result) in planned.iter().zip(results) {
            match result {
                Ok(done) => self.succeeded(p, done, cause).await?,
                Err(err) => {
                    all = false;
                    self.failed(p, err, cause).await?;
                }
            }
        }
        if alarm.is_some() {
            // Not a failure to back off from: decide again at once.
            return Ok(true);
        }
        Ok(all)
    }

    async fn succeeded(
        &mut self,
        p: &PlannedIntent,
        done: Done,
        cause: Option<Uuid>,
    ) -> Result<(), OperatorError> {
        if let Some(password) = done.password {
            self.set_password(Some(password)).await;
        }
        let mut events = done.events;
        tracing::info!(seq = self.state.last_seq, intent = ?p.intent, detail = %done.detail, "intent succeeded");
        events.push(Event::IntentSucceeded {
            intent_id: p.intent_id,
            detail: done.detail.clone(),
        });
        // Outcomes are written through: after a crash the journal says
        // what was done, rather than leaving it to be guessed.
        self.record_now(events, cause).await?;
        if matches!(
            p.intent,
            Intent::PromoteReplica { .. } | Intent::Switchover { .. } | Intent::RollPod { .. }
        ) {
            self.publish_event(
                Kind::Normal,
                intent_name(&p.intent),
                "Succeeded",
                done.detail,
            )
            .await;
        }
        Ok(())
    }

    async fn failed(
        &mut self,
        p: &PlannedIntent,
        mut err: ActError,
        cause: Option<Uuid>,
    ) -> Result<(), OperatorError> {
        tracing::warn!(seq = self.state.last_seq, intent = ?p.intent, error = %err, "intent failed");
        // What the action saw before it failed goes first.
        let mut events = err.take_facts();
        events.push(Event::IntentFailed {
            intent_id: p.intent_id,
            error: err.to_string(),
            retryable: err.is_retryable(),
        });
        self.record_now(events, cause).await?;
        self.publish_event(
            Kind::Warning,
            intent_name(&p.intent),
            "Failed",
            err.to_string(),
        )
        .await;
        Ok(())
    }

    async fn announce_decision(&self, planned: &[PlannedIntent]) {
        let Some(first) = planned.first() else {
            return;
        };
        let what: Vec<String> = planned.iter().map(|p| describe_intent(&p.intent)).collect();
        tracing::info!(
            seq = self.state.last_seq,
            intents = %what.join(", "),
            reason = first.reason.code.name(),
            "decided"
        );
        let note = format!("{}: {}", what.join(", "), first.reason.detail);
        self.publish_event(Kind::Normal, intent_name(&first.intent), "Decided", note)
            .await;
    }
}
