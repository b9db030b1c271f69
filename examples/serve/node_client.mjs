// A Node.js client of `holysheep serve`, with the official `openai` package.
//
//   npm install openai
//   HOLYSHEEP_PROXY_URL=http://127.0.0.1:8080/v1 HOLYSHEEP_VIRTUAL_KEY=hsv-... \
//     node node_client.mjs
//
// Prints one JSON line per step (the tests read it).
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.HOLYSHEEP_PROXY_URL ?? "http://127.0.0.1:8080/v1",
  apiKey: process.env.HOLYSHEEP_VIRTUAL_KEY,
  maxRetries: 0,
});
const model = process.env.HOLYSHEEP_MODEL ?? "smart";
const messages = [{ role: "user", content: "hello there" }];

const { data: reply, response } = await client.chat.completions
  .create({ model, messages })
  .withResponse();
console.log(JSON.stringify({
  step: "invoke",
  model: reply.model,
  text: reply.choices[0].message.content,
  route: response.headers.get("x-holysheep-route"),
  attempts: response.headers.get("x-holysheep-attempts"),
}));

const stream = await client.chat.completions.create({
  model, messages, stream: true, stream_options: { include_usage: true },
});
let text = "";
let usage = null;
for await (const chunk of stream) {
  text += chunk.choices[0]?.delta?.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}
console.log(JSON.stringify({ step: "stream", text, usage }));

try {
  await client.chat.completions.create({ model: "no-such-group", messages });
} catch (err) {
  console.log(JSON.stringify({ step: "error", status: err.status, code: err.code }));
}
