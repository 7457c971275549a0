import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_CUSTOMER_ID, SEED_PRODUCTS } from '../checkout/catalog.js';
import { CHECKOUT_STEPS } from '../checkout/checkout-saga.js';
import { COMPENSATION_FAULT_MODES, FAULT_MODES } from '../engine/faults.js';
import { parseChoice, parseCompensationFailMode, parseCount, parseDuration, parseFailMode, parseId, parseKey, parseQuantity, MAX_QTY } from './parsers.js';

/**
 * The command-line surface, declared and nothing else: each action hands its parsed options to
 * `run`, which main.ts provides. Options are validated here, before any file is touched.
 */
export type Run = (command: string, options: Record<string, unknown>, args: readonly string[]) => Promise<void>;

export function buildProgram(version: string, run: Run): Command {
  const program = new Command('saga')
    .description('Run e-commerce checkouts as durable sagas on SQLite or PostgreSQL: every step and compensation is logged, every crash recoverable.')
    .version(version, '-V, --version')
    .option('--db <path|url>', 'SQLite database file, or a postgres:// URL (env SAGA_DB, or DATABASE_URL; default ./saga.db)', undefined)
    .option('--log-file <path>', 'append JSON log lines here (env SAGA_LOG_FILE)', undefined)
    .option('-q, --quiet', 'no log lines on the console; summaries, results and warnings stay, and the log file keeps every line (env SAGA_QUIET=1)')
    .addOption(new Option('--sync <mode>', 'durability: full fsyncs every commit, normal survives a crash of saga but not of the machine (env SAGA_SYNC)').choices(['full', 'normal']))
    .showSuggestionAfterError()
    // Every subcommand's --help lists --db, --log-file and --sync too: they apply to all of them.
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('after', `
Examples:
  $ saga seed
  $ saga checkout --product 101 --qty 2
  $ saga checkout --product 101 --qty 2 --fail-at payment    # watch a rollback
  $ saga recover

Exit codes: 0 ok, 1 database unusable or failed (or a bug), 2 invalid input,
3 checkout rolled back, 4 rollback incomplete (stuck), 5 violations found (verify,
explore, bench), 129/130/143 stopped by SIGHUP/SIGINT (Ctrl-C)/SIGTERM,
137 killed by --fail-mode crash as asked. With --json, an error is one JSON
object on stdout: {"error":{"code","message"},"exitCode"}.
Settings: flags > environment > ./.env > defaults (see .env.example). LOG_LEVEL sets the log level.`);

  program
    .command('seed')
    .description('create the database if needed, apply migrations and load the demo catalog (idempotent)')
    .option('--reset', 'restore the catalog to its seeded state and clear orders, payments, shipments and sagas')
    .option('--force', 'with --reset: reset even while other processes are driving sagas')
    .option('-y, --yes', 'with --reset: do not ask for confirmation on a terminal')
    .option('--json', 'print the result as one JSON object')
    .addHelpText('after', '\nExamples:\n  $ saga seed\n  $ saga seed --reset --db /tmp/demo.db\n  $ saga seed --reset --yes')
    .action((opts: Record<string, unknown>) => run('seed', opts, []));

  program
    .command('checkout')
    .description('run one checkout saga: inventory, payment, order, shipping; roll back on failure')
    .option('--product <id>', 'product to buy (required; see `saga inventory`)', parseId('--product', SEED_PRODUCTS[0]!.productId))
    .option('--qty <n>', `how many units, 1 to ${MAX_QTY} (required)`, parseQuantity)
    .option('--customer <id>', 'who pays (default: demo customer 1)', parseId('--customer', DEFAULT_CUSTOMER_ID))
    .option('--key <key>', 'idempotency key: rerunning with the same key replays the first outcome', parseKey)
    .option('--json', 'print exactly one JSON object on stdout; logs go to stderr')
    .option('--fail-at <step>', `inject a failure into a step: ${CHECKOUT_STEPS.join(', ')}; none turns off SAGA_FAIL_AT for this run (env SAGA_FAIL_AT)`, parseChoice('--fail-at', [...CHECKOUT_STEPS, 'none']))
    .option('--fail-mode <mode>', `how --fail-at fails: ${FAULT_MODES.join(', ')} (default error; env SAGA_FAIL_MODE)`, parseFailMode)
    .option('--fail-times <n>', 'transient/timeout faults fail n attempts, then succeed; a compensation fault fails n times (env SAGA_FAIL_TIMES)', parseCount('--fail-times', 1, 100))
    .option('--fail-compensation <step>', `make that step's compensation fail; none turns off SAGA_FAIL_COMPENSATION for this run (env SAGA_FAIL_COMPENSATION)`, parseChoice('--fail-compensation', [...CHECKOUT_STEPS, 'none']))
    .option('--fail-compensation-mode <mode>', `how: ${COMPENSATION_FAULT_MODES.join(', ')} (default transient; env SAGA_FAIL_COMPENSATION_MODE)`, parseCompensationFailMode)
    .option('--step-timeout <ms>', 'per-step timeout in milliseconds (env SAGA_STEP_TIMEOUT_MS, default 5000)', parseCount('--step-timeout', 1, 3_600_000))
    .addHelpText('after', `
Examples:
  $ saga checkout --product 101 --qty 2
  $ saga checkout --product 101 --qty 2 --fail-at payment                  # permanent failure: rollback, exit 3
  $ saga checkout --product 101 --qty 1 --fail-at payment --fail-mode transient --fail-times 2   # retried, completes
  $ saga checkout --product 101 --qty 1 --fail-at shipping --fail-compensation payment          # stuck, exit 4
  $ saga checkout --product 101 --qty 1 --key order-42 --json`)
    .hook('preAction', (command) => requireOptions(command, ['product', 'qty']))
    .action((opts: Record<string, unknown>) => run('checkout', opts, []));

  program
    .command('recover')
    .description('take over every abandoned saga (owner gone or lease expired) and drive it to an end')
    .option('--json', 'print the result as one JSON object (with --watch: one JSON line per saga)')
    .option('--watch', 'keep running: recover sagas as their owners die or leases expire, until Ctrl-C or SIGTERM (exit 0)')
    .option('--interval <ms>', 'with --watch: how often to look, in milliseconds (default 1000)', parseCount('--interval', 10, 3_600_000))
    .addHelpText('after', '\nExamples:\n  $ saga recover\n  $ saga recover --json | jq .\n  $ saga recover --watch --db postgres://saga@db.internal/shop')
    .action((opts: Record<string, unknown>) => run('recover', opts, []));

  program
    .command('list')
    .description('the most recent sagas first, one line each; stuck and unfinished ones stand out')
    .addOption(new Option('--status <status>', 'only sagas in this status').choices(['running', 'compensating', 'completed', 'compensated', 'stuck']))
    .option('--limit <n>', 'how many (default 20)', parseCount('--limit', 1, 100_000))
    .option('--json', 'print a JSON array')
    .addHelpText('after', '\nExamples:\n  $ saga list\n  $ saga list --status stuck --json')
    .action((opts: Record<string, unknown>) => run('list', opts, []));

  program
    .command('show')
    .description("one saga's timeline from the saga log: every attempt, its outcome and error, and the rows it produced")
    .argument('<sagaId>', 'a saga id from `saga list` or `checkout` output')
    .option('--json', 'print one JSON object, the log records as `events`')
    .addHelpText('after', '\nExamples:\n  $ saga show 3f2a9c1e-...\n  $ saga show 3f2a9c1e-... --json | jq .events')
    .action((sagaId: string, opts: Record<string, unknown>) => run('show', { ...opts, sagaId }, [sagaId]));

  program
    .command('cancel')
    .description('ask a running saga to roll back: its owner does before its next step (or recovery does, if its owner is gone)')
    .argument('<sagaId>', 'a saga id, or a unique start or end of one (6 characters or more)')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExit 0: the saga will not complete (cancel recorded, or already rolling back); 2: it already ended, or a bad id.\n\nExamples:\n  $ saga cancel 3f2a9c1e\n  $ saga cancel 3f2a9c1e-... --json')
    .action((sagaId: string, opts: Record<string, unknown>) => run('cancel', { ...opts, sagaId }, [sagaId]));

  program
    .command('retry')
    .description("retry a stuck saga's failed compensations now, with a fresh budget; touches that saga only")
    .argument('<sagaId>', 'a saga id, or a unique start or end of one (6 characters or more)')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExit 0: it ended compensated (or completed); 4: still stuck; 2: it already ended, a live owner drives it, or a bad id.\n\nExamples:\n  $ saga retry 3f2a9c1e\n  $ saga retry 3f2a9c1e --json')
    .action((sagaId: string, opts: Record<string, unknown>) => run('retry', { ...opts, sagaId }, [sagaId]));

  program
    .command('prune')
    .description('delete the log (saga rows, events, take-overs) of completed and compensated sagas that ended before an age; business rows stay')
    .option('--older-than <duration>', 'age of the sagas to prune: 30d, 12h, 90m or 45s (required)', parseDuration('--older-than'))
    .option('--dry-run', 'say what would be deleted, delete nothing')
    .option('--vacuum', 'afterwards, give the space back (SQLite VACUUM; PostgreSQL VACUUM of the log tables)')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExamples:\n  $ saga prune --older-than 30d --dry-run\n  $ saga prune --older-than 30d --vacuum')
    .hook('preAction', (command) => requireOptions(command, ['olderThan']))
    .action((opts: Record<string, unknown>) => run('prune', opts, []));

  program
    .command('verify')
    .description('check every saga invariant over the whole database; exit 5 if any is violated')
    .option('--json', 'print one JSON object with the violations')
    .addHelpText('after', '\nExamples:\n  $ saga verify\n  $ saga verify --json | jq .violations')
    .action((opts: Record<string, unknown>) => run('verify', opts, []));

  program
    .command('inventory')
    .description('products with their seeded, available, reserved and sold quantities')
    .option('--json', 'print a JSON array')
    .addHelpText('after', '\nExamples:\n  $ saga inventory')
    .action((opts: Record<string, unknown>) => run('inventory', opts, []));

  program
    .command('bench')
    .description('run many checkouts in this process and report throughput, latency and outcomes, then verify')
    .option('--n <count>', 'how many checkouts (default 1000)', parseCount('--n', 1, 10_000_000))
    .option('--concurrency <c>', 'checkouts in flight at a time (default 1)', parseCount('--concurrency', 1, 1024))
    .option('--fail-rate <r>', 'share of checkouts given a random fault, 0 to 1 (default 0)', parseRate)
    .option('--product <id>', 'product to buy (default 101; restocked as needed)', parseId('--product', SEED_PRODUCTS[0]!.productId))
    .option('--seed <n>', 'seed of the random faults, to replay a run (default 1)', parseCount('--seed', 0, 2 ** 31))
    .option('--processes <p>', 'run the checkouts in p processes at once against the same database (default 1)', parseCount('--processes', 1, 64))
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nWithout --db (or SAGA_DB, DATABASE_URL, .env) it benchmarks a scratch database, removed afterwards,\nnot ./saga.db.\n\nExamples:\n  $ saga bench --n 2000 --concurrency 16\n  $ saga bench --n 500 --fail-rate 0.2 --seed 7 --json --sync normal\n  $ saga bench --n 4000 --processes 4 --db postgres://saga@localhost/shop')
    .action((opts: Record<string, unknown>) => run('bench', opts, []));

  program
    .command('explore')
    .description('inject every failure at every point of the checkout saga, each on a throwaway copy of the database, and check every invariant after each; exit 5 on a violation')
    .option('--depth <n>', '1: every single fault; 2: also every fault in the recovery or rollback that follows one (default 1)', (text: string) => Number(parseChoice('--depth', ['1', '2'])(text)))
    .option('--jobs <n>', 'run the scenarios in n worker processes (default 1)', parseCount('--jobs', 1, 64))
    .option('--case <id>', 'run one scenario by its id (as printed for a violation) and show what happened')
    .option('--json', 'print one JSON object: the summary and every scenario with its replay commands')
    .option('--markdown', 'print the matrix as a Markdown table (for a CI job summary)')
    .addOption(new Option('--worker').hideHelp())
    .addHelpText('after', `
The explored database (--db, SAGA_DB or .env) is copied, never written; without one, a freshly
seeded database is explored (not ./saga.db). Exit 0: no violation; 5: violations; 2: bad input.

Examples:
  $ saga explore
  $ saga explore --depth 2 --jobs 2
  $ saga explore --markdown >> "$GITHUB_STEP_SUMMARY"
  $ saga explore --case payment.action.crash-after-effect`)
    .action((opts: Record<string, unknown>) => run('explore', opts, []));

  program
    .command('serve')
    .description('run checkouts as an HTTP service (POST /api/checkouts), with recovery running alongside; see docs/serve.md')
    .option('--port <n>', 'TCP port, 0 for any free one (default 3000)', parseCount('--port', 0, 65_535))
    .option('--host <address>', 'address to listen on (default 127.0.0.1; another needs SAGA_API_TOKEN or --insecure)')
    .option('--allow-faults', 'accept "faults" in checkout requests (demos and tests; never in production)')
    .option('--insecure', 'listen on a non-local --host without SAGA_API_TOKEN')
    .option('--grace-ms <ms>', 'on SIGTERM/SIGINT, how long sagas in flight may take to end (default 10000)', parseCount('--grace-ms', 0, 3_600_000))
    .option('--recover-interval <ms>', 'how often to look for abandoned sagas to recover (default 1000)', parseCount('--recover-interval', 10, 3_600_000))
    .addHelpText('after', `
Prints "saga serve: listening on http://<host>:<port>" on stdout once it accepts requests.
SAGA_API_TOKEN: when set, every /api request needs "Authorization: Bearer <token>".

Examples:
  $ saga serve
  $ saga serve --port 0 --allow-faults --db /tmp/demo.db
  $ SAGA_API_TOKEN=s3cret saga serve --host 0.0.0.0 --db postgres://saga@db.internal/shop
  $ curl -si localhost:3000/api/checkouts -H 'content-type: application/json' -d '{"productId":101,"qty":1}'`)
    .action((opts: Record<string, unknown>) => run('serve', opts, []));

  return program;
}

/**
 * Commander checks required options before it looks for unknown ones, so a typo
 * (`--prodcut 101`) was reported as "--product not specified" and never named. Checking them
 * here, in a hook that runs after the unknown-option check, reports the typo first.
 */
function requireOptions(command: Command, names: readonly string[]): void {
  for (const name of names) {
    if (command.getOptionValue(name) !== undefined) continue;
    const option = command.options.find((o) => o.attributeName() === name);
    command.error(`error: required option '${option?.flags ?? `--${name}`}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
  }
}

function parseRate(text: string): number {
  const r = Number(text);
  if (text.trim() === '' || !Number.isFinite(r) || r < 0 || r > 1) throw new InvalidArgumentError('--fail-rate must be a number from 0 to 1, such as 0.1.');
  return r;
}
