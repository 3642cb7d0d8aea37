/* The MPI library's settings that h5batch chooses around MPI_Init, to cut start-up cost. */
#ifndef HB_MPIENV_H
#define HB_MPIENV_H

/* Not collective (every rank decides alike, from its host). Before MPI_Init: on a host
 * without a high-speed fabric device, and when neither the environment
 * (OMPI_MCA_pml, OMPI_MCA_mtl, OMPI_MCA_param_files) nor an Open MPI parameter file
 * chooses the transport (selects a PML or MTL, or excludes ob1; excluding others is no
 * choice), selects Open MPI's ob1 PML (shared memory and TCP), so that MPI_Init
 * does not probe for Omni-Path, TrueScale and libfabric hardware that is not there.
 * A plain process (no mpirun, srun or other launcher) is made an isolated singleton (no
 * orted) with an Open MPI session folder of its own, unless the environment sets
 * OMPI_MCA_ess_singleton_isolated or OMPI_MCA_orte_tmpdir_base: the default singleton
 * can crash at MPI_Finalize (mpienv.c). H5BATCH_MPI_DEFAULTS=0 leaves the environment
 * alone. */
void hb_mpi_env_defaults(void);

/* Not collective. After MPI_Finalize: removes the session folder hb_mpi_env_defaults made
 * for a plain process, with what Open MPI left in it; nothing when it made none. */
void hb_mpi_env_cleanup(void);

/* Not collective. After MPI_Init: sets TCP_NODELAY on the process's TCP connections to
 * this host, that is the PMIx client's connection to its local server (mpirun's or
 * orted's; Slurm's PMIx plugin where it uses TCP). PMIx leaves Nagle's algorithm on: at
 * MPI_Finalize the client sends two small messages back to back and the second waits
 * for the server's delayed acknowledgement, 40 ms on Linux, in every command. Only
 * when packets leave changes, never what they carry. H5BATCH_MPI_DEFAULTS=0 leaves the
 * sockets alone. Returns how many sockets it set. */
int hb_mpi_env_after_init(void);

#endif
