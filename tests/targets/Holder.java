// A Java program holding objects in the JVM's own heap (run as a single-file source program,
// `java Holder.java READY_FILE`): heapsnap walks the process's malloc heap and must say that the
// Java heap, where these objects are, is not in its report. Writes "ready" to READY_FILE once it
// holds them, then waits.
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

public class Holder {
    static final List<String> KEPT = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        for (int i = 0; i < 200000; i++)
            KEPT.add("held-" + i);
        Files.writeString(Path.of(args[0]), "ready");
        while (true)
            Thread.sleep(1000);
    }
}
