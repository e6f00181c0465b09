// An ACP client written with the reference TypeScript SDK (@agentclientprotocol/sdk, npm), for
// tests/server/test_acp_reference_client.py: it starts the agent command, initializes with fs
// capabilities, opens a session on the workspace, sends one prompt, allows the permission request, serves
// fs/read_text_file and fs/write_text_file from disk, then closes the session (session/close) and sends it
// one more prompt, and prints what happened as one JSON object.
//
// Usage: node acp_reference_client.mjs SDK_DIR WORKSPACE PROMPT -- COMMAND [ARGS...]
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pathToFileURL } from "node:url";

const [sdkDir, cwd, text, dashes, command, ...args] = process.argv.slice(2);
if (dashes !== "--" || !command) {
  console.error("usage: node acp_reference_client.mjs SDK_DIR WORKSPACE PROMPT -- COMMAND [ARGS...]");
  process.exit(2);
}
const acp = await import(pathToFileURL(join(sdkDir, "dist/v1/stable/acp.js")).href);

const agent = spawn(command, args, { cwd, stdio: ["pipe", "pipe", "inherit"] });
const record = { updates: [], permissions: [], reads: [], writes: [] };

const app = acp
  .client({ name: "agentls-test-client" })
  .onRequest(acp.methods.client.session.requestPermission, ({ params }) => {
    record.permissions.push(params);
    const allow = params.options.find((option) => option.kind === "allow_once");
    return { outcome: { outcome: "selected", optionId: allow.optionId } };
  })
  .onRequest(acp.methods.client.fs.readTextFile, ({ params }) => {
    record.reads.push(params.path);
    return { content: readFileSync(params.path, "utf8") };
  })
  .onRequest(acp.methods.client.fs.writeTextFile, ({ params }) => {
    record.writes.push(params.path);
    writeFileSync(params.path, params.content);
    return {};
  })
  .onNotification(acp.methods.client.session.update, ({ params }) => {
    record.updates.push(params.update);
  });

const stream = acp.ndJsonStream(Writable.toWeb(agent.stdin), Readable.toWeb(agent.stdout));
try {
  await app.connectWith(stream, async (ctx) => {
    record.initialize = await ctx.request(acp.methods.agent.initialize, {
      protocolVersion: acp.PROTOCOL_VERSION,
      clientCapabilities: { fs: { readTextFile: true, writeTextFile: true } },
    });
    const session = await ctx.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
    const reply = await ctx.request(acp.methods.agent.session.prompt, {
      sessionId: session.sessionId,
      prompt: [{ type: "text", text }],
    });
    record.stopReason = reply.stopReason;
    record.close = await ctx.request(acp.methods.agent.session.close, { sessionId: session.sessionId });
    try {
      await ctx.request(acp.methods.agent.session.prompt, {
        sessionId: session.sessionId,
        prompt: [{ type: "text", text }],
      });
      record.afterClose = "answered";
    } catch (error) {
      record.afterClose = String(error?.message ?? error);
    }
  });
} catch (error) {
  record.error = String(error?.stack ?? error);
}
agent.kill();
process.stdout.write(JSON.stringify(record) + "\n");
process.exit(0);
