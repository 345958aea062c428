// HdrReferee: Java's HdrHistogram (Debian package libhdrhistogram-java) as the referee for
// imagen-load's HdrHistogram outputs (histograms/*.hgrm and e2e_latency.hlog).
//
// Run it as a single-file source program (Java 11+, no class files to commit):
//
//   java -cp /usr/share/java/hdrhistogram.jar tests/interop/HdrReferee.java hgrm OUT/e2e_latency.hlog [TAG]
//   java -cp /usr/share/java/hdrhistogram.jar tests/interop/HdrReferee.java tags OUT/e2e_latency.hlog
//
// or compiled:
//
//   javac -cp /usr/share/java/hdrhistogram.jar -d /tmp/referee tests/interop/HdrReferee.java
//   java -cp /usr/share/java/hdrhistogram.jar:/tmp/referee HdrReferee hgrm OUT/e2e_latency.hlog [TAG]
//
// Modes:
//   hgrm FILE.hlog [TAG]  Reads the interval log with HistogramLogReader, adds every interval histogram whose
//                         tag is TAG (the untagged lines when TAG is omitted or empty) into one histogram, the way
//                         HistogramLogProcessor accumulates (a copy of the first interval histogram, reset, with
//                         auto-resize on), and prints outputPercentileDistribution(System.out, 5, 1000.0): the
//                         classic .hgrm text, microsecond values printed in milliseconds.
//   tags FILE.hlog        Prints one line per tag present, in order of first appearance:
//                         TAG <TAB> number of interval lines <TAB> total count. The untagged lines are shown as
//                         "(untagged)".
//
// Exit codes: 0 ok, 1 bad usage or no histogram of that tag, 2 the log could not be read to its end.

import java.io.FileNotFoundException;
import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.Map;

import org.HdrHistogram.EncodableHistogram;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogReader;

public class HdrReferee {
    static final String UNTAGGED = "(untagged)";
    static final double US_PER_MS = 1000.0;
    static final int TICKS_PER_HALF_DISTANCE = 5;

    public static void main(String[] args) throws Exception {
        if (args.length >= 2 && args.length <= 3 && args[0].equals("hgrm")) {
            String tag = args.length == 3 && !args[2].isEmpty() ? args[2] : null;
            System.exit(hgrm(args[1], tag, System.out));
        } else if (args.length == 2 && args[0].equals("tags")) {
            System.exit(tags(args[1], System.out));
        } else {
            System.err.println("usage: HdrReferee hgrm FILE.hlog [TAG]\n       HdrReferee tags FILE.hlog");
            System.exit(1);
        }
    }

    /** Reads every interval histogram; complains (exit 2) when the reader stopped before the end. */
    interface Visitor {
        void visit(EncodableHistogram h);
    }

    static int readAll(String path, Visitor visitor) {
        HistogramLogReader reader;
        try {
            reader = new HistogramLogReader(path);
        } catch (FileNotFoundException e) {
            System.err.println("HdrReferee: " + e.getMessage());
            return 2;
        }
        try {
            EncodableHistogram h;
            while ((h = reader.nextIntervalHistogram()) != null) {
                visitor.visit(h);
            }
            if (reader.hasNext()) {
                System.err.println("HdrReferee: " + path + ": the log reader stopped before the end of the file");
                return 2;
            }
            return 0;
        } catch (RuntimeException e) {
            // A malformed histogram payload makes the decoder throw (e.g. from the Inflater).
            System.err.println("HdrReferee: " + path + ": unreadable interval histogram: " + e);
            return 2;
        } finally {
            reader.close();
        }
    }

    static int hgrm(String path, String tag, PrintStream out) {
        final Histogram[] acc = {null};
        int rc = readAll(path, h -> {
            boolean wanted = tag == null ? h.getTag() == null : tag.equals(h.getTag());
            if (!wanted) {
                return;
            }
            if (!(h instanceof Histogram)) {
                throw new IllegalStateException("not an integer-valued Histogram line: " + h.getClass().getName());
            }
            Histogram ih = (Histogram) h;
            if (acc[0] == null) {
                // As HistogramLogProcessor.run() does: a copy of the first interval histogram, reset, auto-resize.
                acc[0] = ih.copy();
                acc[0].reset();
                acc[0].setAutoResize(true);
            }
            acc[0].add(ih);
        });
        if (rc != 0) {
            return rc;
        }
        if (acc[0] == null) {
            System.err.println("HdrReferee: " + path + ": no interval histogram with tag "
                    + (tag == null ? UNTAGGED : tag));
            return 1;
        }
        acc[0].outputPercentileDistribution(out, TICKS_PER_HALF_DISTANCE, US_PER_MS);
        out.flush();
        return 0;
    }

    static int tags(String path, PrintStream out) {
        final Map<String, long[]> perTag = new LinkedHashMap<>();
        int rc = readAll(path, h -> {
            String tag = h.getTag() == null ? UNTAGGED : h.getTag();
            long[] v = perTag.computeIfAbsent(tag, k -> new long[2]);
            v[0] += 1;
            if (h instanceof Histogram) {
                v[1] += ((Histogram) h).getTotalCount();
            } else {
                throw new IllegalStateException("not an integer-valued Histogram line: " + h.getClass().getName());
            }
        });
        for (Map.Entry<String, long[]> e : perTag.entrySet()) {
            out.println(e.getKey() + "\t" + e.getValue()[0] + "\t" + e.getValue()[1]);
        }
        out.flush();
        return rc;
    }
}
