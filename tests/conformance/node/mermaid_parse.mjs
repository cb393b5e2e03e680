// Parse mermaid diagrams with the real `mermaid` package under jsdom (no browser).
//
// Usage: node mermaid_parse.mjs FILE...   (a file may be a bare diagram or markdown holding
// ```mermaid fenced blocks; "-" reads stdin). Prints one JSON line per diagram:
// {"file", "index", "ok", "type", "error"}; exits 0 when every diagram parsed, 1 otherwise,
// 2 when a file held no diagram at all (a conformance check must never pass by checking nothing).
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>", { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
for (const name of ["Element", "HTMLElement", "SVGElement", "DOMParser", "Node", "navigator"]) {
  if (!(name in globalThis)) {
    Object.defineProperty(globalThis, name, { value: dom.window[name], configurable: true });
  }
}

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });

function diagramsOf(text) {
  const fence = /^```mermaid[^\n]*\n([\s\S]*?)^```/gm;
  const found = [...text.matchAll(fence)].map((m) => m[1]);
  if (found.length > 0) return found;
  return text.includes("```") ? [] : [text];
}

let failed = false;
let empty = false;
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  const diagrams = diagramsOf(text).filter((d) => d.trim() !== "");
  if (diagrams.length === 0) {
    empty = true;
    console.log(JSON.stringify({ file, index: null, ok: false, type: null, error: "no mermaid diagram found" }));
    continue;
  }
  for (const [index, diagram] of diagrams.entries()) {
    try {
      const result = await mermaid.parse(diagram);
      console.log(JSON.stringify({ file, index, ok: true, type: result.diagramType, error: null }));
    } catch (err) {
      failed = true;
      console.log(JSON.stringify({ file, index, ok: false, type: null, error: String(err?.message ?? err) }));
    }
  }
}
process.exit(failed ? 1 : empty ? 2 : 0);
