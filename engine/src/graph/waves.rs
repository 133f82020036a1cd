//! Parallel waves for `rok-plan plan`: which instances would run together if every step
//! took the same time, honouring `needs`, `max_parallel` and `finally`.

use crate::graph::expand::ExecutionGraph;

/// Groups the instances into waves. Instances of a wave have all their dependencies in
/// earlier waves; `max_parallel` holds elements back; `finally` instances come last.
pub fn waves(graph: &ExecutionGraph) -> Vec<Vec<usize>> {
    let n = graph.instances.len();
    let dependents = graph.dependents();
    let mut waiting: Vec<usize> = graph.instances.iter().map(|i| i.deps.len()).collect();
    // Per unit: per element, instances not yet done, and whether it has started.
    let mut remaining: Vec<Vec<usize>> = graph
        .units
        .iter()
        .map(|u| vec![0; u.elements.len()])
        .collect();
    let mut started: Vec<Vec<bool>> = graph
        .units
        .iter()
        .map(|u| vec![false; u.elements.len()])
        .collect();
    let mut active: Vec<u32> = vec![0; graph.units.len()];
    for inst in &graph.instances {
        for &(u, e) in &inst.units {
            remaining[u][e] += 1;
        }
    }
    let mut regular_left = graph.instances.iter().filter(|i| !i.finally).count();
    let mut ready: Vec<usize> = (0..n)
        .filter(|&i| waiting[i] == 0 && !graph.instances[i].finally)
        .collect();
    let mut finally_ready: Vec<usize> = (0..n)
        .filter(|&i| waiting[i] == 0 && graph.instances[i].finally)
        .collect();
    let mut out = Vec::new();
    let mut done = 0;
    while done < n {
        if ready.is_empty() && regular_left == 0 {
            ready.append(&mut finally_ready);
        }
        let mut wave = Vec::new();
        let mut held = Vec::new();
        for &i in &ready {
            let units = &graph.instances[i].units;
            let admitted = units.iter().all(|&(u, e)| {
                started[u][e] || graph.units[u].max_parallel.is_none_or(|m| active[u] < m)
            });
            if admitted {
                for &(u, e) in units {
                    if !started[u][e] {
                        started[u][e] = true;
                        active[u] += 1;
                    }
                }
                wave.push(i);
            } else {
                held.push(i);
            }
        }
        if wave.is_empty() {
            break; // unreachable for a validated plan: no cycle can hold every instance back
        }
        let mut next = held;
        for &i in &wave {
            done += 1;
            let inst = &graph.instances[i];
            if !inst.finally {
                regular_left -= 1;
            }
            for &(u, e) in &inst.units {
                remaining[u][e] -= 1;
                if remaining[u][e] == 0 {
                    active[u] -= 1;
                }
            }
            for &d in &dependents[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    if graph.instances[d].finally {
                        finally_ready.push(d);
                    } else {
                        next.push(d);
                    }
                }
            }
        }
        next.sort_unstable();
        ready = next;
        out.push(wave);
    }
    out
}
