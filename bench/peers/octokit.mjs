// GitHub webhooks with @octokit/webhooks' Node middleware: verify and parse, no-op handler.
import { createServer } from "node:http";
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";

const webhooks = new Webhooks({ secret: process.env.GITHUB_WEBHOOK_SECRET });
webhooks.onAny(() => {});
const port = Number(process.env.PORT);
createServer(createNodeMiddleware(webhooks, { path: "/api/v1/webhooks/github" })).listen(port, "127.0.0.1", () =>
  console.log(`octokit on ${port}`),
);
