//! A job's stage DAG as SVG: one box per stage (a link to its page), in
//! columns by depth (a stage is right of every stage it reads), and one
//! arrow per input, labelled with the exchange kind and the bytes its
//! producer wrote.

use std::fmt::Write;

use super::html::{esc, fmt_bytes};
use crate::status_store::JobStatus;

const NODE_W: usize = 200;
const NODE_H: usize = 64;
const COL_GAP: usize = 110;
const ROW_GAP: usize = 36;
const MARGIN: usize = 16;

/// Each stage's column: 0 for a stage that reads no other, else one more
/// than the deepest stage it reads.
pub fn depths(job: &JobStatus) -> Vec<usize> {
    let n = job.stages.len();
    let mut depth = vec![0; n];
    // Inputs have smaller ids than their consumers in a stage graph, but do
    // not rely on it: relax n times (a cycle, which cannot happen, stops).
    for _ in 0..n {
        let mut changed = false;
        for s in &job.stages {
            for &i in &s.info.inputs {
                if i < n && s.info.id < n && depth[s.info.id] < depth[i] + 1 {
                    depth[s.info.id] = depth[i] + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

/// The SVG of `job`'s stage DAG; stage boxes link to
/// `/jobs/<job>/stages/<n>`.
pub fn dag_svg(job: &JobStatus) -> String {
    let depth = depths(job);
    let columns = depth.iter().max().map_or(0, |d| d + 1);
    let mut rows = vec![0; columns];
    let mut pos = vec![(0, 0); job.stages.len()];
    for (i, d) in depth.iter().enumerate() {
        pos[i] = (
            MARGIN + d * (NODE_W + COL_GAP),
            MARGIN + rows[*d] * (NODE_H + ROW_GAP),
        );
        rows[*d] += 1;
    }
    let width = MARGIN * 2 + columns * NODE_W + columns.saturating_sub(1) * COL_GAP;
    let height = MARGIN * 2 + rows.iter().max().copied().unwrap_or(0) * (NODE_H + ROW_GAP);
    let failed = job.state() == "failed";
    let mut svg = format!(
        "<svg class=\"dag\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"stage DAG of {}\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" \
         markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>",
        esc(&job.job_id)
    );
    for s in &job.stages {
        for &i in &s.info.inputs {
            let (Some(&(x0, y0)), Some(&(x1, y1))) = (pos.get(i), pos.get(s.info.id)) else {
                continue;
            };
            let producer = &job.stages[i];
            let (ax, ay) = (x0 + NODE_W, y0 + NODE_H / 2);
            let (bx, by) = (x1, y1 + NODE_H / 2);
            let label = format!(
                "{} \u{b7} {}",
                producer.info.exchange,
                fmt_bytes(producer.bytes_out())
            );
            let _ = write!(
                svg,
                "<g class=\"edge\" data-from=\"{i}\" data-to=\"{}\"><line x1=\"{ax}\" y1=\"{ay}\" x2=\"{bx}\" y2=\"{by}\" \
                 stroke=\"#555\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>\
                 <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#333\">{}</text></g>",
                s.info.id,
                (ax + bx) / 2,
                (ay + by) / 2 - 6,
                esc(&label)
            );
        }
    }
    for s in &job.stages {
        let Some(&(x, y)) = pos.get(s.info.id) else {
            continue;
        };
        let state = s.state(failed);
        let fill = match state {
            "complete" => "#dff3df",
            "running" => "#dde9fb",
            "failed" => "#fbdddd",
            _ => "#eeeeee",
        };
        let top = s.info.operators.first().map(String::as_str).unwrap_or("");
        let _ = write!(
            svg,
            "<a href=\"/jobs/{job}/stages/{id}\"><g class=\"stage-node\" data-stage=\"{id}\" data-state=\"{state}\">\
             <title>stage {id}: {ops}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"6\" fill=\"{fill}\" stroke=\"#345\"/>\
             <text x=\"{tx}\" y=\"{ty1}\" font-size=\"13\" font-weight=\"700\">Stage {id}</text>\
             <text x=\"{tx}\" y=\"{ty2}\" font-size=\"11\">{done}/{tasks} tasks \u{b7} {state}</text>\
             <text x=\"{tx}\" y=\"{ty3}\" font-size=\"10\" fill=\"#555\">{top}</text></g></a>",
            job = esc(&job.job_id),
            id = s.info.id,
            ops = esc(&s.info.operators.join(" <- ")),
            tx = x + 8,
            ty1 = y + 18,
            ty2 = y + 36,
            ty3 = y + 54,
            done = s.tasks_succeeded.min(s.num_tasks),
            tasks = s.num_tasks,
            top = esc(top),
        );
    }
    svg.push_str("</svg>");
    svg
}
