import { packageVersion } from '../common/package-version.js';
import { type Command, EXIT, parseFlags } from './command.js';

export const versionCommand: Command = {
  name: 'version',
  summary: 'print the version',
  help: 'Usage: homeport version\n\nPrints homeport\'s version and the Node.js version it runs on.',
  async run(argv) {
    const { values } = parseFlags(argv, {});
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    console.log(`homeport ${packageVersion()} (node ${process.versions.node})`);
    return EXIT.ok;
  },
};
