// Slack slash commands with @slack/bolt's HTTP receiver and an ack-only handler. `authorize`
// answers locally so Bolt makes no call to slack.com (the benchmark is offline and loopback).
import bolt from "@slack/bolt";

const signingSecret = process.env.SLACK_SIGNING_SECRET;
const app = new bolt.App({
  signingSecret,
  authorize: async () => ({ botToken: "xoxb-bench", botId: "B0BENCH", botUserId: "U0BENCH" }),
  receiver: new bolt.HTTPReceiver({ signingSecret, endpoints: "/api/v1/webhooks/slack" }),
});
app.command(/.*/, async ({ ack }) => {
  await ack();
});
await app.start(Number(process.env.PORT));
console.log(`bolt on ${process.env.PORT}`);
