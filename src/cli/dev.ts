// `npm run dev -- <args>`: the CLI straight from TypeScript through tsx, no build needed.
import { main } from './main.js';

await main(process.argv);
