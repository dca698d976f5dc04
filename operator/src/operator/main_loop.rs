//! The operator's main loop: [`run`] opens the journals, contends for
//! the Lease, watches the defaults, starts the servers (metrics and
//! probes, the webhooks, the UI), then runs the controller over the
//! ValkeyClusters and everything that wakes one until the shutdown, and
//! finally tells the operator stream and releases the Lease.

use super::*;

/// Runs the operator until `shutdown` completes.
///
/// # Errors
/// The journal cannot be opened.
pub async fn run(
    client: kube::Client,
    config: OperatorConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), OperatorError> {
    let listeners = bind_endpoints(&config).await?;
    let ui_listener = match config.ui_addr {
        Some(addr) => Some(crate::ui::bind(addr).await.map_err(OperatorError::Config)?),
        None => None,
    };
    let sled = open_sled(&config)?;
    let operator_store = match (config.journal, &sled) {
        (JournalBackend::Sled, Some(local)) => AnyStore::Sled(local.clone()),
        (JournalBackend::Both, Some(local)) => AnyStore::Both {
            cluster: ConfigMapStore::new(client.clone(), &config.lease.namespace),
            local: local.clone(),
        },
        _ => AnyStore::ConfigMap(ConfigMapStore::new(client.clone(), &config.lease.namespace)),
    };
    let operator_stream = Arc::new(Mutex::new(OperatorStream::open(operator_store).await?));
    let group_commit = config.group_commit.unwrap_or(match config.journal {
        JournalBackend::Sled => Duration::ZERO,
        JournalBackend::ConfigMap | JournalBackend::Both => GROUP_COMMIT,
    });

    // Leadership: the elector runs until the operator has committed what
    // it holds, then releases the Lease.
    let (leader_tx, leadership) = watch::channel(Leadership::Follower);
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let lease_contact = leader::LeaseContact::default();
    let elector = tokio::spawn(leader::run_with_contact(
        client.clone(),
        config.lease.clone(),
        leader_tx,
        lease_contact.clone(),
        async move {
            let _ = release_rx.await;
        },
    ));
    let metrics = Metrics::new();
    let follower = tokio::spawn(follow_leadership(
        leadership.clone(),
        operator_stream.clone(),
        config.instance.clone(),
        metrics.clone(),
    ));
    // The defaults: every namespace's, or the watched one's and the
    // operator's. Each change reconciles every cluster (each judges its
    // own layers), and is checked and said in the object's status.
    let operator_namespace = config.lease.namespace.clone();
    let (defaults_stores, defaults_watches) =
        watch_defaults(&client, config.namespace.as_deref(), &operator_namespace);
    let ctx = Arc::new(Context {
        deps: RuntimeDeps {
            client: client.clone(),
            journals: JournalFactory {
                backend: config.journal,
                client: client.clone(),
                sled: sled.clone(),
                group_commit,
            },
            events: events::Publisher::new(client.clone(), config.instance.clone()),
            features: config.features.clone(),
            leadership: leadership.clone(),
            instance: config.instance.clone(),
            metrics,
        },
        clusters: Mutex::new(HashMap::new()),
        unhealthy: Mutex::new(HashMap::new()),
        lease_contact,
        lease_duration: config.lease.lease_duration,
        user_secrets: users::SecretIndex::default(),
        defaults: defaults::DefaultsIndex::new(defaults_stores, operator_namespace),
        terminating: terminating::Terminating::default(),
    });
    let servers = start_servers(listeners, ui_listener, &ctx, &config, sled.as_ref());
    tracing::info!(instance = %config.instance, journal = %config.journal, lease = %format!("{}/{}", config.lease.namespace, config.lease.name), "operator started");
    let (defaults_task, defaults_changes) = spawn_defaults_task(&ctx, defaults_watches);
    let watched = Watched::new(&client, config.namespace.as_deref());
    let orphans = spawn_orphans(&ctx, watched.valkey_users.clone());
    run_controller(&ctx, watched, defaults_changes, shutdown).await;
    orphans.abort();
    defaults_task.abort();
    ctx.stop_all().await;
    let epoch = leadership.borrow().epoch();
    if let Some(epoch) = epoch {
        let stopped = Event::OperatorStopped {
            instance: config.instance.clone(),
        };
        if let Err(err) = operator_stream
            .lock()
            .await
            .append(epoch, vec![stopped])
            .await
        {
            tracing::warn!(%err, "cannot journal the shutdown");
        }
    }
    follower.abort();
    for server in servers {
        server.abort();
    }
    let _ = release_tx.send(());
    if let Err(err) = elector.await {
        tracing::warn!(%err, "leader election task failed");
    }
    if let Some(sled) = &sled {
        sled.flush().map_err(|source| OperatorError::Store {
            path: config.journal_dir.display().to_string(),
            source,
        })?;
    }
    tracing::info!("operator stopped");
    Ok(())
}

/// The sled journal, when the backend keeps one.
fn open_sled(config: &OperatorConfig) -> Result<Option<SledStore>, OperatorError> {
    Ok(if config.journal.uses_sled() {
        std::fs::create_dir_all(&config.journal_dir).map_err(|e| {
            OperatorError::Config(format!(
                "cannot create the journal directory {}: {e}",
                config.journal_dir.display()
            ))
        })?;
        Some(
            SledStore::open(&config.journal_dir, logbook_journal::Durability::Flush).map_err(
                |source| OperatorError::Store {
                    path: config.journal_dir.display().to_string(),
                    source,
                },
            )?,
        )
    } else {
        None
    })
}

/// A watch of each defaults object the operator reads, with its store.
type DefaultsWatches = (
    Vec<kube::runtime::reflector::Store<ValkeyOperatorDefaults>>,
    Vec<futures::stream::BoxStream<'static, Result<ValkeyOperatorDefaults, watcher::Error>>>,
);

/// The defaults objects: every namespace's, or the watched one's and the
/// operator's, each with a store the reconciles judge layers from.
fn watch_defaults(
    client: &kube::Client,
    namespace: Option<&str>,
    operator_namespace: &str,
) -> DefaultsWatches {
    let defaults_apis: Vec<Api<ValkeyOperatorDefaults>> = match namespace {
        None => vec![Api::all(client.clone())],
        Some(ns) if ns == operator_namespace => vec![Api::namespaced(client.clone(), ns)],
        Some(ns) => vec![
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), operator_namespace),
        ],
    };
    let mut defaults_stores = Vec::new();
    let mut defaults_watches = Vec::new();
    for api in defaults_apis {
        let (reader, writer) = kube::runtime::reflector::store();
        defaults_stores.push(reader);
        defaults_watches.push(
            kube::runtime::WatchStreamExt::applied_objects(kube::runtime::reflector(
                writer,
                watcher(api, watcher::Config::default()),
            ))
            .boxed(),
        );
    }
    (defaults_stores, defaults_watches)
}

/// The servers every instance runs: metrics and probes, the UI, the
/// validating webhook.
fn start_servers(
    listeners: Vec<(tokio::net::TcpListener, http::Endpoints)>,
    ui_listener: Option<tokio::net::TcpListener>,
    ctx: &Arc<Context>,
    config: &OperatorConfig,
    sled: Option<&SledStore>,
) -> Vec<JoinHandle<()>> {
    let client = &ctx.deps.client;
    let leadership = &ctx.deps.leadership;
    let mut servers: Vec<JoinHandle<()>> = listeners
        .into_iter()
        .map(|(listener, endpoints)| tokio::spawn(http::serve(listener, ctx.clone(), endpoints)))
        .collect();
    if let Some(listener) = ui_listener {
        let journals = match sled {
            Some(local) => crate::ui::Journals::Local(local.clone()),
            None => crate::ui::Journals::ConfigMaps(client.clone()),
        };
        let ui = Arc::new(crate::ui::Ui {
            client: client.clone(),
            journals,
            namespace: config.namespace.clone(),
            reviews: (config.ui_auth == crate::ui::UiAuth::Reviews)
                .then(|| crate::ui::auth::Reviews::new(client.clone())),
        });
        servers.push(tokio::spawn(async move {
            if let Err(err) = crate::ui::serve(listener, ui, std::future::pending()).await {
                tracing::warn!(%err, "the web UI stopped");
            }
        }));
    }
    // The validating webhook: served by every instance (its Service
    // reaches any of them), refusing hand changes to the objects made;
    // the storage migration it enables is the leader's.
    if let Some(webhook) = config.webhook.clone() {
        servers.push(crate::webhook::start(
            client.clone(),
            webhook,
            leadership.clone(),
        ));
    }
    servers
}

/// The APIs the controller watches, in the watched namespace or all.
struct Watched {
    clusters: Api<ValkeyCluster>,
    pods: Api<Pod>,
    sets: Api<StatefulSet>,
    services: Api<Service>,
    maps: Api<ConfigMap>,
    secrets: Api<Secret>,
    pdbs: Api<PodDisruptionBudget>,
    valkey_users: Api<ValkeyUser>,
    all_secrets: Api<Secret>,
    valkey_backups: Api<ValkeyBackup>,
}

impl Watched {
    fn new(client: &kube::Client, namespace: Option<&str>) -> Self {
        let (valkey_users, all_secrets, valkey_backups) = match namespace {
            Some(ns) => (
                Api::<ValkeyUser>::namespaced(client.clone(), ns),
                Api::<Secret>::namespaced(client.clone(), ns),
                Api::<ValkeyBackup>::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
        let (clusters, pods, sets, services, maps, secrets, pdbs) = match namespace {
            Some(ns) => (
                Api::<ValkeyCluster>::namespaced(client.clone(), ns),
                Api::<Pod>::namespaced(client.clone(), ns),
                Api::<StatefulSet>::namespaced(client.clone(), ns),
                Api::<Service>::namespaced(client.clone(), ns),
                Api::<ConfigMap>::namespaced(client.clone(), ns),
                Api::<Secret>::namespaced(client.clone(), ns),
                Api::<PodDisruptionBudget>::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
        Self {
            clusters,
            pods,
            sets,
            services,
            maps,
            secrets,
            pdbs,
            valkey_users,
            all_secrets,
            valkey_backups,
        }
    }
}

/// Checks each defaults object seen (its status, by the leader); returns
/// the task and the stream of changes, each of which reconciles every
/// cluster.
fn spawn_defaults_task(
    ctx: &Arc<Context>,
    defaults_watches: Vec<
        futures::stream::BoxStream<'static, Result<ValkeyOperatorDefaults, watcher::Error>>,
    >,
) -> (
    JoinHandle<()>,
    impl futures::Stream<Item = ()> + Send + use<>,
) {
    let client = &ctx.deps.client;
    let leadership = &ctx.deps.leadership;
    let (defaults_tx, defaults_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let defaults_task = tokio::spawn({
        let client = client.clone();
        let leadership = leadership.clone();
        let events = ctx.deps.events.clone();
        async move {
            let mut changes = futures::stream::select_all(defaults_watches);
            while let Some(change) = changes.next().await {
                match change {
                    Ok(object) => {
                        if leadership.borrow().is_leader()
                            && let Err(err) =
                                defaults::publish_defaults_status(&client, &events, &object).await
                        {
                            tracing::warn!(%err, "cannot write a ValkeyOperatorDefaults status");
                        }
                        let _ = defaults_tx.send(());
                    }
                    Err(err) => tracing::debug!(%err, "ValkeyOperatorDefaults watch"),
                }
            }
        }
    });
    let defaults_changes = futures::stream::unfold(defaults_rx, |mut rx| async move {
        rx.recv().await.map(|()| ((), rx))
    });
    (defaults_task, defaults_changes)
}

/// ValkeyUsers whose cluster does not exist (the cluster's reconcile
/// handles the others).
fn spawn_orphans(ctx: &Arc<Context>, valkey_users: Api<ValkeyUser>) -> JoinHandle<()> {
    let client = &ctx.deps.client;
    let leadership = &ctx.deps.leadership;
    tokio::spawn({
        let client = client.clone();
        let leadership = leadership.clone();
        let users = valkey_users;
        Controller::new(users, watcher::Config::default())
            .run(
                move |user: Arc<ValkeyUser>, _: Arc<()>| {
                    let client = client.clone();
                    let leading = leadership.borrow().is_leader();
                    async move {
                        users::reconcile_orphan(&user, &client, leading).await?;
                        // A follower looks again: it may lead by then.
                        Ok::<_, OperatorError>(if leading {
                            kube::runtime::controller::Action::await_change()
                        } else {
                            kube::runtime::controller::Action::requeue(Duration::from_secs(30))
                        })
                    }
                },
                |_, _: &OperatorError, _| {
                    kube::runtime::controller::Action::requeue(Duration::from_secs(10))
                },
                Arc::new(()),
            )
            .for_each(|_| async {})
    })
}

/// The controller over the ValkeyClusters, woken by a change of
/// leadership or of the defaults and by every object that belongs to a
/// cluster, until `shutdown`.
async fn run_controller(
    ctx: &Arc<Context>,
    watched: Watched,
    defaults_changes: impl futures::Stream<Item = ()> + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let Watched {
        clusters,
        pods,
        sets,
        services,
        maps,
        secrets,
        pdbs,
        valkey_users,
        all_secrets,
        valkey_backups,
    } = watched;
    let leadership = &ctx.deps.leadership;
    let managed = watcher::Config::default().labels(&format!(
        "{}={}",
        labels::MANAGED_BY,
        labels::MANAGED_BY_VALUE
    ));
    // Data pods and Sentinel pods (whose name label differs, so that the
    // data pods' selectors never match them).
    let pod_watch = watcher::Config::default().labels(&format!(
        "{} in ({},{})",
        labels::NAME,
        labels::NAME_VALUE,
        labels::SENTINEL_NAME_VALUE
    ));
    // Every change of leadership reconciles every cluster: a new leader
    // takes each journal over, a follower stops.
    let leadership_changes = futures::stream::unfold(leadership.clone(), |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    });
    let controller = Controller::new(clusters, watcher::Config::default());
    ctx.defaults.set_clusters(controller.store());
    controller
        .reconcile_all_on(futures::stream::select(
            leadership_changes,
            defaults_changes,
        ))
        // The objects the operator made reconcile their cluster, whichever
        // served version their owner reference names (`owned_by`).
        .watches(sets, managed.clone(), owned_by::<StatefulSet>)
        .watches(services, managed.clone(), owned_by::<Service>)
        .watches(maps, managed.clone(), owned_by::<ConfigMap>)
        .watches(secrets, managed.clone(), owned_by::<Secret>)
        .watches(pdbs, managed, owned_by::<PodDisruptionBudget>)
        .watches(pods, pod_watch, {
            let terminating = ctx.terminating.clone();
            move |pod: Pod| {
                terminating.seen(&pod);
                let ns = pod.metadata.namespace.clone()?;
                let cluster = pod.metadata.labels.as_ref()?.get(labels::CLUSTER)?.clone();
                Some(ObjectRef::<ValkeyCluster>::new(&cluster).within(&ns))
            }
        })
        // A ValkeyUser reconciles the cluster it names; a Secret one names
        // (a password set or rotated), the clusters whose users name it.
        .watches(
            valkey_users,
            watcher::Config::default(),
            |user: ValkeyUser| {
                let ns = user.metadata.namespace.clone()?;
                Some(ObjectRef::<ValkeyCluster>::new(&user.spec.cluster).within(&ns))
            },
        )
        // A ValkeyBackup reconciles the cluster it names.
        .watches(
            valkey_backups,
            watcher::Config::default(),
            |backup: ValkeyBackup| {
                let ns = backup.metadata.namespace.clone()?;
                Some(ObjectRef::<ValkeyCluster>::new(&backup.spec.cluster).within(&ns))
            },
        )
        .watches(all_secrets, watcher::Config::default(), {
            let index = ctx.user_secrets.clone();
            move |secret: Secret| {
                let ns = secret.metadata.namespace.clone().unwrap_or_default();
                let name = secret.metadata.name.clone().unwrap_or_default();
                index.clusters_of(&ns, &name)
            }
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
        .for_each(|result| async move {
            match result {
                // `reconcile` logged it, in the cluster's span.
                Ok(_) | Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
                Err(kube::runtime::controller::Error::ObjectNotFound(object)) => {
                    let span = cluster_span(
                        object.namespace.as_deref().unwrap_or_default(),
                        &object.name,
                        None,
                    );
                    tracing::debug!(parent: &span, "a reconcile found the object deleted");
                }
                Err(err) => tracing::debug!(%err, "controller"),
            }
        })
        .await;
}
