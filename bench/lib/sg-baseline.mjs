// The loop an operator writes today, with the real @aws-sdk/client-scheduler: list every
// schedule group (pages of 100), then ListTagsForResource one group at a time, sequentially.
// Run as a child process (like opsctl), configured by the standard AWS_* environment only.
// Prints one JSON object: how many groups and how many tags it saw.
import { SchedulerClient, ListScheduleGroupsCommand, ListTagsForResourceCommand } from '@aws-sdk/client-scheduler';

const client = new SchedulerClient({});
const groups = [];
let NextToken;
do {
  const page = await client.send(new ListScheduleGroupsCommand({ MaxResults: 100, NextToken }));
  groups.push(...(page.ScheduleGroups ?? []));
  NextToken = page.NextToken;
} while (NextToken);

let tags = 0;
const out = [];
for (const g of groups) {
  const { Tags = [] } = await client.send(new ListTagsForResourceCommand({ ResourceArn: g.Arn }));
  tags += Tags.length;
  out.push({ name: g.Name, state: g.State, tags: Object.fromEntries(Tags.map((t) => [t.Key, t.Value])) });
}
client.destroy();
process.stdout.write(`${JSON.stringify({ groups: groups.length, tags, items: out })}\n`);
