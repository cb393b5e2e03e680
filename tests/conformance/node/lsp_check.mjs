// Drive the real yaml-language-server over stdio LSP, as VS Code or Neovim would.
//
// Usage: node lsp_check.mjs FILE [LINE:COL ...]
//   Opens FILE (which should carry a `# yaml-language-server: $schema=...` modeline), waits for
//   the diagnostics the server publishes, and asks for completions at each 0-based LINE:COL.
//   Prints one JSON object: {"diagnostics": [{line, col, message, source}], "completions":
//   {"LINE:COL": [labels]}, "schemaErrors": [...]}. Exit 0 on a completed exchange, 1 on a
//   protocol failure or timeout.
//
// Offline on purpose: schema association comes only from the modeline (a path relative to
// the file, or a file:// URI); the schema store and every http fetch are switched off.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const require = createRequire(import.meta.url);
const [file, ...positions] = process.argv.slice(2);
if (!file) {
  console.error("usage: node lsp_check.mjs FILE [LINE:COL ...]");
  process.exit(2);
}
const uri = pathToFileURL(resolve(file)).href;
const text = readFileSync(file, "utf8");
const server = require.resolve("yaml-language-server/bin/yaml-language-server");
const settings = {
  yaml: {
    validate: true,
    completion: true,
    hover: true,
    format: { enable: false },
    schemaStore: { enable: false, url: "" },
    schemas: {},
    customTags: [],
    disableDefaultProperties: false,
  },
  http: { proxy: "", proxyStrictSSL: false },
  "[yaml]": {},
  editor: { tabSize: 2 },
};

const child = spawn(process.execPath, [server, "--stdio"], { stdio: ["pipe", "pipe", "pipe"] });
let stderr = "";
child.stderr.on("data", (chunk) => (stderr += chunk));

let nextId = 1;
const pending = new Map();
const diagnostics = [];
const logs = [];
let diagnosticsSeen = null;

function send(message) {
  const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", ...message }), "utf8");
  child.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
  child.stdin.write(body);
}
function request(method, params) {
  const id = nextId++;
  send({ id, method, params });
  return new Promise((resolveReply, reject) => pending.set(id, { resolveReply, reject, method }));
}
const notify = (method, params) => send({ method, params });

function configFor(section) {
  if (!section) return settings;
  return section.split(".").reduce((value, key) => (value == null ? null : value[key]), settings) ?? null;
}

function onMessage(msg) {
  if (msg.id !== undefined && msg.method === undefined) {
    const waiter = pending.get(msg.id);
    if (!waiter) return;
    pending.delete(msg.id);
    if (msg.error) waiter.reject(new Error(`${waiter.method}: ${msg.error.message}`));
    else waiter.resolveReply(msg.result);
    return;
  }
  if (msg.id !== undefined) {
    // A request from the server: answer configuration, accept everything else.
    let result = null;
    if (msg.method === "workspace/configuration") result = msg.params.items.map((i) => configFor(i.section));
    send({ id: msg.id, result });
    return;
  }
  if (msg.method === "textDocument/publishDiagnostics" && msg.params.uri === uri) {
    diagnostics.splice(0, diagnostics.length, ...msg.params.diagnostics);
    diagnosticsSeen?.();
  } else if (msg.method === "window/logMessage" || msg.method === "window/showMessage") {
    logs.push(msg.params.message);
  }
}

let buffer = Buffer.alloc(0);
child.stdout.on("data", (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  for (;;) {
    const headerEnd = buffer.indexOf("\r\n\r\n");
    if (headerEnd < 0) return;
    const header = buffer.subarray(0, headerEnd).toString("ascii");
    const length = Number(/Content-Length: *(\d+)/i.exec(header)?.[1]);
    if (buffer.length < headerEnd + 4 + length) return;
    const body = buffer.subarray(headerEnd + 4, headerEnd + 4 + length).toString("utf8");
    buffer = buffer.subarray(headerEnd + 4 + length);
    onMessage(JSON.parse(body));
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const deadline = setTimeout(() => {
  console.error(`timeout talking to yaml-language-server\n${stderr}\n${logs.join("\n")}`);
  child.kill("SIGKILL");
  process.exit(1);
}, 30000);

try {
  await request("initialize", {
    processId: process.pid,
    rootUri: pathToFileURL(resolve(".")).href,
    capabilities: {
      workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: false } },
      textDocument: {
        publishDiagnostics: { relatedInformation: true },
        completion: { completionItem: { snippetSupport: true, documentationFormat: ["plaintext"] } },
      },
    },
    initializationOptions: {},
  });
  notify("initialized", {});
  notify("workspace/didChangeConfiguration", { settings });

  // The server publishes once per validation; validation waits for the schema to load.
  const published = new Promise((r) => (diagnosticsSeen = r));
  notify("textDocument/didOpen", { textDocument: { uri, languageId: "yaml", version: 1, text } });
  await published;
  await sleep(300); // a settings change may trigger one more validation: keep the last
  const completions = {};
  for (const position of positions) {
    const [line, character] = position.split(":").map(Number);
    const result = await request("textDocument/completion", { textDocument: { uri }, position: { line, character } });
    const items = Array.isArray(result) ? result : result?.items ?? [];
    completions[position] = items.map((item) => item.label);
  }
  console.log(
    JSON.stringify({
      diagnostics: diagnostics.map((d) => ({
        line: d.range.start.line,
        col: d.range.start.character,
        message: d.message,
        source: d.source ?? null,
      })),
      completions,
      logs,
    }),
  );
  await request("shutdown", null);
  notify("exit", null);
  clearTimeout(deadline);
  process.exit(0);
} catch (err) {
  console.error(`${err.stack ?? err}\n${stderr}`);
  child.kill("SIGKILL");
  process.exit(1);
}
