//! One pod's life on the node: prepare (images, volumes, env), run the
//! init containers in order, then the containers, keep configMap/secret
//! volumes fresh, write the status when it changes, and on deletion stop
//! everything, clean the pod's directory, release its address and delete
//! the pod with gracePeriodSeconds 0.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};

use super::container::{self, Container, Restart};
use super::env::{self, EnvSource, Refs};
use super::images;
use super::probe::{Probe, Probes};
use super::procs::{Launch, MARKER, Mount};
use super::status::{self, CState, CStatus, PodView};
use super::volumes;
use super::{Shared, worker::PodEvent};
use crate::{DeleteOptions, names};

fn s<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

fn containers(pod: &Value, field: &str) -> Vec<Value> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

/// The grace period of the pod's deletion.
fn deletion_grace(pod: &Value) -> Duration {
    let secs = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_u64)
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_u64)
        })
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// A pod worker's state.
struct PodRun {
    shared: Arc<Shared>,
    pod: Value,
    ip: Ipv4Addr,
    init: Vec<Arc<Mutex<CStatus>>>,
    main: Vec<Arc<Mutex<CStatus>>>,
    initialized: Arc<Mutex<bool>>,
    problem: Option<(String, String)>,
    notify: Arc<Notify>,
    written: Value,
}

impl PodRun {
    fn ns(&self) -> String {
        s(&self.pod, "/metadata/namespace")
            .unwrap_or("default")
            .to_owned()
    }
    fn name(&self) -> String {
        s(&self.pod, "/metadata/name")
            .unwrap_or_default()
            .to_owned()
    }

    /// Writes the status through the status subresource, only when it
    /// differs from what was last written.
    async fn write_status(&mut self) {
        let init: Vec<CStatus> = self.init.iter().map(|c| c.lock().clone()).collect();
        let main: Vec<CStatus> = self.main.iter().map(|c| c.lock().clone()).collect();
        let previous = self.pod.get("status").cloned().unwrap_or_else(|| json!({}));
        let now = names::now();
        let st = status::pod_status(&PodView {
            previous: if self.written.is_null() {
                &previous
            } else {
                &self.written
            },
            ip: Some(self.ip),
            host_ip: self.shared.instance.node_ip(),
            init: &init,
            main: &main,
            initialized: *self.initialized.lock(),
            problem: self.problem.clone(),
            now: &now,
        });
        if st == self.written {
            return;
        }
        let ns = self.ns();
        let name = self.name();
        let res = self
            .shared
            .api
            .merge_patch("v1", "pods", Some(&ns), &name, &json!({"status": st}), true)
            .await;
        match res {
            Ok(_) => self.written = st,
            Err(e) => tracing::debug!(pod = %name, error = %e, "kubelet: status write failed"),
        }
    }

    /// Marks every container waiting with `reason`.
    fn all_waiting(&self, reason: &str, message: &str) {
        for c in self.init.iter().chain(self.main.iter()) {
            c.lock().state = CState::waiting(reason, Some(message.to_owned()));
        }
    }

    /// Builds the supervisors, or the reason the pod cannot start yet.
    fn build(
        &self,
        vols: &BTreeMap<String, PathBuf>,
        pids: &Arc<Mutex<HashMap<String, u32>>>,
        refs: &Refs,
    ) -> Result<(Vec<Container>, Vec<Container>), (String, String)> {
        let cfg = &self.shared.config;
        let uid = s(&self.pod, "/metadata/uid").unwrap_or_default();
        let policy = Restart::parse(s(&self.pod, "/spec/restartPolicy"));
        let grace = Duration::from_secs(
            self.pod
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(30),
        );
        let logs = volumes::pod_dir(&cfg.state_dir, uid).join("logs");
        let table = &cfg.images;
        let bin = &self.shared.bin_dir;
        let ip = self.ip.to_string();
        let host_ip = self.shared.instance.node_ip().to_string();
        let build_one = |c: &Value,
                         status: &Arc<Mutex<CStatus>>,
                         restart: Restart|
         -> Result<Container, (String, String)> {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            let image_bin = images::image_bin_dir(table, bin, image);
            let mut envs = env::build(
                &EnvSource {
                    refs,
                    pod: &self.pod,
                    pod_ip: &ip,
                    node_name: &cfg.node_name,
                    host_ip: &host_ip,
                },
                c,
            )
            .map_err(|m| ("CreateContainerConfigError".to_owned(), m))?;
            // `$(VAR)` in the command and its arguments, from the
            // container's environment, as the kubelet expands them.
            let expanded = |field: &str| -> Vec<String> {
                strings(c.get(field))
                    .iter()
                    .map(|a| env::expand(a, &envs))
                    .collect()
            };
            let argv =
                images::resolve_argv(table, bin, image, &expanded("command"), &expanded("args"))
                    .map_err(|m| ("ErrImagePull".to_owned(), m))?;
            // An image that lacks commands must not find them on the bin
            // path (see `images`).
            let bin_path = images::sees_bin_path(table, image)
                .then_some(cfg.bin_path.iter())
                .into_iter()
                .flatten()
                .cloned();
            let path = std::iter::once(image_bin.clone())
                .chain(bin_path)
                .map(|p| p.to_string_lossy().into_owned())
                .chain(images::SYSTEM_PATH.map(str::to_owned))
                .collect::<Vec<_>>()
                .join(":");
            let mut base = vec![
                ("PATH".to_owned(), path),
                ("HOSTNAME".to_owned(), self.name()),
                ("HOME".to_owned(), "/root".to_owned()),
            ];
            base.retain(|(k, _)| !envs.iter().any(|(e, _)| e == k));
            envs.splice(0..0, base);
            envs.push(("LOCALKUBE_POD_IP".to_owned(), ip.clone()));
            envs.push((
                "LD_PRELOAD".to_owned(),
                self.shared.shim.to_string_lossy().into_owned(),
            ));
            envs.push((
                MARKER.to_owned(),
                cfg.state_dir.to_string_lossy().into_owned(),
            ));
            let mut mounts = Vec::new();
            for m in c
                .get("volumeMounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let vname = m.get("name").and_then(Value::as_str).unwrap_or_default();
                let Some(src) = vols.get(vname) else {
                    return Err((
                        "CreateContainerConfigError".to_owned(),
                        format!("volume \"{vname}\" not found"),
                    ));
                };
                let mut source = src.clone();
                if let Some(sub) = m
                    .get("subPath")
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty())
                {
                    source = source.join(sub);
                    if !source.exists() {
                        let _ = std::fs::create_dir_all(&source);
                    }
                }
                mounts.push(Mount {
                    source,
                    target: m
                        .get("mountPath")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    read_only: m.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
                });
            }
            let ports: Vec<(String, u16)> = c
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let n = p
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let port = p
                        .get("containerPort")
                        .and_then(Value::as_u64)
                        .and_then(|x| u16::try_from(x).ok())?;
                    Some((n, port))
                })
                .collect();
            let resolve = |argv: &[String]| -> Vec<String> {
                let mut a = argv.to_vec();
                if let Some(first) = a.first_mut()
                    && let Some(link) = images::resolve_in(table, &image_bin, first)
                {
                    *first = link.to_string_lossy().into_owned();
                }
                a
            };
            let probes = Probes {
                readiness: Probe::parse(c.get("readinessProbe"), &ports, &resolve),
                liveness: Probe::parse(c.get("livenessProbe"), &ports, &resolve),
                startup: Probe::parse(c.get("startupProbe"), &ports, &resolve),
            };
            let pre_stop = c
                .pointer("/lifecycle/preStop/exec/command")
                .map(|v| resolve(&strings(Some(v))));
            Ok(Container {
                launch: Launch {
                    argv,
                    env: envs,
                    working_dir: Some(working_dir(c, &mounts, &logs, &name)),
                    mounts,
                    log: logs.join(format!("{name}.log")),
                },
                name,
                probes,
                pre_stop,
                restart,
                ip: self.ip,
                grace,
                status: status.clone(),
                notify: self.notify.clone(),
                pids: pids.clone(),
                message_from_log: c.get("terminationMessagePolicy").and_then(Value::as_str)
                    == Some("FallbackToLogsOnError"),
            })
        };
        let init_policy = if policy == Restart::Never {
            Restart::Never
        } else {
            Restart::OnFailure
        };
        let mut init = Vec::new();
        for (c, st) in containers(&self.pod, "initContainers")
            .iter()
            .zip(&self.init)
        {
            init.push(build_one(c, st, init_policy)?);
        }
        let mut main = Vec::new();
        for (c, st) in containers(&self.pod, "containers").iter().zip(&self.main) {
            main.push(build_one(c, st, policy)?);
        }
        Ok((init, main))
    }

    /// Re-materializes configMap/secret volumes whose objects changed.
    async fn refresh_volumes(&self) {
        let refs = match Refs::fetch(&self.shared.api, &self.pod).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "kubelet: volume refresh");
                return;
            }
        };
        let cfg = &self.shared.config;
        let uid = s(&self.pod, "/metadata/uid").unwrap_or_default();
        for vol in self
            .pod
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if vol.get("configMap").is_none() && vol.get("secret").is_none() {
                continue;
            }
            let name = vol.get("name").and_then(Value::as_str).unwrap_or_default();
            let dir = volumes::pod_dir(&cfg.state_dir, uid)
                .join("volumes")
                .join(name);
            if let Err(e) = volumes::refresh(&refs, vol, &dir) {
                tracing::debug!(volume = %name, error = %e, "kubelet: volume refresh");
            }
        }
    }
}

/// Runs init containers in order, then the containers, until all end.
async fn run_containers(
    init: Vec<Container>,
    main: Vec<Container>,
    initialized: Arc<Mutex<bool>>,
    notify: Arc<Notify>,
    stop: watch::Receiver<Option<Duration>>,
) {
    for c in init {
        let code = container::supervise(c, stop.clone()).await;
        if code != Some(0) || stop.borrow().is_some() {
            return;
        }
    }
    *initialized.lock() = true;
    notify.notify_one();
    let all = main
        .into_iter()
        .map(|c| container::supervise(c, stop.clone()));
    futures::future::join_all(all).await;
}

/// How the worker ends.
enum End {
    /// The pod is being deleted: stop with this grace, then delete it.
    Delete(Duration),
    /// The pod object is gone already.
    Gone,
    /// The kubelet shuts down: stop, leave the pod.
    Shutdown,
}

/// The pod worker (see the module docs).
pub(crate) async fn run(
    shared: Arc<Shared>,
    pod: Value,
    ip: Ipv4Addr,
    pids: Arc<Mutex<HashMap<String, u32>>>,
    mut rx: mpsc::UnboundedReceiver<PodEvent>,
) {
    let mk = |field: &str| -> Vec<Arc<Mutex<CStatus>>> {
        containers(&pod, field)
            .iter()
            .map(|c| {
                Arc::new(Mutex::new(CStatus::new(
                    c.get("name").and_then(Value::as_str).unwrap_or_default(),
                    c.get("image").and_then(Value::as_str).unwrap_or_default(),
                )))
            })
            .collect()
    };
    let mut run = PodRun {
        shared: shared.clone(),
        init: mk("initContainers"),
        main: mk("containers"),
        initialized: Arc::new(Mutex::new(containers(&pod, "initContainers").is_empty())),
        pod,
        ip,
        problem: None,
        notify: Arc::new(Notify::new()),
        written: Value::Null,
    };
    let mut shutdown = shared.shutdown.clone();
    let (stop_tx, stop_rx) = watch::channel(None::<Duration>);
    let terminal = matches!(s(&run.pod, "/status/phase"), Some("Succeeded" | "Failed"));
    let mut runner = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let end = loop {
        if let Some(t) = run.pod.pointer("/metadata/deletionTimestamp")
            && !t.is_null()
        {
            break End::Delete(deletion_grace(&run.pod));
        }
        if runner.is_none() && !terminal {
            let prepared = match Refs::fetch(&shared.api, &run.pod).await {
                Ok(refs) => volumes::prepare(&refs, &shared.config.state_dir, &run.pod)
                    .map(|vols| (vols, refs)),
                Err(e) => Err(e),
            };
            match prepared {
                Err(m) => {
                    run.problem = Some(("ContainersNotReady".to_owned(), m.clone()));
                    run.all_waiting("ContainerCreating", &m);
                }
                Ok((vols, refs)) => match run.build(&vols, &pids, &refs) {
                    Err((reason, m)) => {
                        run.problem = None;
                        run.all_waiting(&reason, &m);
                    }
                    Ok((init, main)) => {
                        run.problem = None;
                        runner = Some(tokio::spawn(run_containers(
                            init,
                            main,
                            run.initialized.clone(),
                            run.notify.clone(),
                            stop_rx.clone(),
                        )));
                    }
                },
            }
            run.write_status().await;
        }
        tokio::select! {
            () = run.notify.notified() => run.write_status().await,
            ev = rx.recv() => match ev {
                Some(PodEvent::Updated(p)) => run.pod = p,
                Some(PodEvent::Deleted) => break End::Gone,
                None => break End::Shutdown,
            },
            _ = tick.tick() => {
                if runner.is_some() {
                    run.refresh_volumes().await;
                }
                run.write_status().await;
            }
            _ = shutdown.changed() => break End::Shutdown,
        }
    };
    let grace = match &end {
        End::Delete(g) => *g,
        End::Gone => Duration::ZERO,
        End::Shutdown => deletion_grace(&run.pod).min(Duration::from_secs(5)),
    };
    let _ = stop_tx.send(Some(grace));
    if let Some(r) = runner {
        let _ = r.await;
    }
    finish(&shared, &mut run, end).await;
}

/// After the processes are gone: clean up and, for a deletion, delete.
async fn finish(shared: &Arc<Shared>, run: &mut PodRun, end: End) {
    let uid = s(&run.pod, "/metadata/uid").unwrap_or_default().to_owned();
    super::faults::heal_ip(shared, run.ip).await;
    match end {
        End::Shutdown => {}
        End::Delete(_) | End::Gone => {
            let _ =
                tokio::fs::remove_dir_all(volumes::pod_dir(&shared.config.state_dir, &uid)).await;
        }
    }
    if let End::Delete(_) = end {
        run.write_status().await;
        let opts = DeleteOptions {
            grace_period: Some(0),
            uid: Some(uid.clone()),
            ..DeleteOptions::default()
        };
        let ns = run.ns();
        let name = run.name();
        if let Err(e) = shared
            .api
            .delete("v1", "pods", Some(&ns), &name, &opts)
            .await
        {
            tracing::debug!(pod = %name, error = %e, "kubelet: final delete");
        }
    }
    super::worker::forget(shared, &uid);
}

/// The directory a container starts in. A real container starts in its
/// `workingDir`, else its image's WORKDIR inside its own root filesystem —
/// never in the kubelet's directory. The Valkey images' WORKDIR is `/data`,
/// which is where data volumes are mounted; when nothing is mounted there,
/// the container gets a directory of its own under the pod's state, so
/// files it writes relative to its cwd (an RDB dump, say) stay with the pod
/// instead of landing in the host's `/data` or the caller's directory.
fn working_dir(c: &Value, mounts: &[Mount], logs: &std::path::Path, name: &str) -> String {
    if let Some(w) = c
        .get("workingDir")
        .and_then(Value::as_str)
        .filter(|w| !w.is_empty())
    {
        return w.to_owned();
    }
    if mounts.iter().any(|m| m.target == "/data") {
        return "/data".to_owned();
    }
    let own = logs
        .parent()
        .map_or_else(|| logs.to_path_buf(), std::path::Path::to_path_buf)
        .join("containers")
        .join(name);
    own.to_string_lossy().into_owned()
}
